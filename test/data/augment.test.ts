/**
 * Tests of src/data/augment.ts against tensors computed here the way torchvision defines the transforms:
 * pad with zeros to 40x40, crop 32x32 at (top, left), mirror the columns, then (v/255 - mean)/std in float64.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { expectClose } from '../helpers/close';
import { augmentInto, buildBatchX, sampleAugmentation, SampleAugmentation } from '../../src/data/augment';
import { CIFAR_MEAN, CIFAR_STD, normalizeImage } from '../../src/data/normalize';
import { rgbPattern } from './make';

/** torchvision's RandomCrop(32, padding=4) at (top, left), then RandomHorizontalFlip if flip, ToTensor, Normalize. */
function reference(src: Uint8Array, top: number, left: number, flip: boolean): Float64Array {
  const padded = new Uint8Array(40 * 40 * 3); // zeros
  for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) for (let c = 0; c < 3; c++) padded[3 * ((y + 4) * 40 + x + 4) + c] = src[3 * (y * 32 + x) + c];
  const out = new Float64Array(3 * 32 * 32);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 32; x++) {
        const cx = flip ? 31 - x : x;
        const v = padded[3 * ((y + top) * 40 + cx + left) + c];
        out[c * 1024 + y * 32 + x] = (v / 255 - CIFAR_MEAN[c]) / CIFAR_STD[c];
      }
    }
  }
  return out;
}

const src = rgbPattern(32, 32, 11);
const aug = (top: number, left: number, flip: boolean): SampleAugmentation => ({ top, left, flip, cy: 0, cx: 0 });

describe('crop, flip, normalize', () => {
  test('equal the torchvision definitions for corner, centre and flipped cases', () => {
    for (const [top, left, flip] of [[0, 0, false], [8, 8, false], [4, 4, false], [0, 8, true], [8, 0, true], [3, 6, true], [4, 4, true]] as const) {
      const out = new Float32Array(3072);
      augmentInto(out, 0, src, 0, aug(top, left, flip), { crop: true, flip: true });
      expectClose(out, reference(src, top, left, flip), { atol: 1e-6, rtol: 0 }, `top=${top} left=${left} flip=${flip}`);
    }
  });

  test('crop off / flip off ignore those draws; nothing on equals normalizeImage', () => {
    const out = new Float32Array(3072);
    augmentInto(out, 0, src, 0, aug(0, 8, true), { crop: false, flip: true });
    expectClose(out, reference(src, 4, 4, true), { atol: 1e-6, rtol: 0 }, 'flip only');
    augmentInto(out, 0, src, 0, aug(0, 8, true), { crop: true, flip: false });
    expectClose(out, reference(src, 0, 8, false), { atol: 1e-6, rtol: 0 }, 'crop only');
    const batch = buildBatchX(src, [0], 3, 1, { crop: false, flip: false });
    assert.deepEqual(batch, normalizeImage(src));
  });

  test('cutout zeroes a clipped square of side L in all channels and nothing else', () => {
    const a: SampleAugmentation = { top: 4, left: 4, flip: false, cy: 2, cx: 30 };
    const plain = new Float32Array(3072);
    const cut = new Float32Array(3072);
    augmentInto(plain, 0, src, 0, a, { crop: true, flip: true });
    augmentInto(cut, 0, src, 0, a, { crop: true, flip: true, cutout: 16 });
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) {
          const i = c * 1024 + y * 32 + x;
          const inside = y < 10 && x >= 22; // rows [2-8, 2+8) clipped to [0, 10), cols [30-8, 30+8) to [22, 32)
          assert.equal(cut[i], inside ? 0 : plain[i], `c=${c} y=${y} x=${x}`);
        }
      }
    }
  });
});

describe('random draws', () => {
  test('a function of (seed, epoch, index) only, covering every offset and both flips', () => {
    assert.deepEqual(sampleAugmentation(7, 2, 123), sampleAugmentation(7, 2, 123));
    const tops = new Set<number>();
    const lefts = new Set<number>();
    let flips = 0;
    const n = 2000;
    for (let i = 0; i < n; i++) {
      const a = sampleAugmentation(7, 2, i);
      tops.add(a.top);
      lefts.add(a.left);
      if (a.flip) flips++;
      assert.ok(a.cy >= 0 && a.cy < 32 && a.cx >= 0 && a.cx < 32);
    }
    assert.deepEqual([...tops].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual([...lefts].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert.ok(flips > 0.45 * n && flips < 0.55 * n, `flips ${flips}/${n}`);
    const differ = (f: (i: number) => SampleAugmentation): number => Array.from({ length: 50 }, (_, i) => i).filter((i) => JSON.stringify(f(i)) !== JSON.stringify(sampleAugmentation(7, 2, i))).length;
    assert.ok(differ((i) => sampleAugmentation(7, 3, i)) > 40, 'another epoch draws differently');
    assert.ok(differ((i) => sampleAugmentation(8, 2, i)) > 40, 'another seed draws differently');
  });

  test('--crop-padding: offsets within 2·padding, and a crop under padding 2 is the same crop under padding 4, 2 pixels further in', () => {
    const tops = new Set<number>();
    for (let i = 0; i < 500; i++) {
      assert.deepEqual(sampleAugmentation(7, 2, i, 4), sampleAugmentation(7, 2, i), 'the default is the seed\'s 4');
      const a = sampleAugmentation(7, 2, i, 2);
      tops.add(a.top);
      assert.ok(a.left >= 0 && a.left <= 4);
    }
    assert.deepEqual([...tops].sort((a, b) => a - b), [0, 1, 2, 3, 4]);
    assert.ok([...Array(50).keys()].every((i) => sampleAugmentation(3, 1, i, 0).top === 0), 'padding 0: no move');
    const src = Uint8Array.from({ length: 3072 }, (_, i) => (i * 37 + 11) & 255);
    for (const [top, left, flip] of [[0, 0, false], [4, 1, true], [2, 2, false], [3, 0, true]] as const) {
      const two = new Float32Array(3072);
      const four = new Float32Array(3072);
      augmentInto(two, 0, src, 0, aug(top, left, flip), { crop: true, cropPadding: 2, flip: true });
      augmentInto(four, 0, src, 0, aug(top + 2, left + 2, flip), { crop: true, flip: true });
      assert.deepEqual(two, four, `top ${top} left ${left} flip ${flip}`);
    }
    // buildBatchX draws with the batch's padding
    const x = buildBatchX(src, [0], 1, 3, { crop: true, cropPadding: 1, flip: false });
    const one = new Float32Array(3072);
    augmentInto(one, 0, src, 0, sampleAugmentation(3, 1, 0, 1), { crop: true, cropPadding: 1, flip: false });
    assert.deepEqual(x, one);
  });

  test('--alternate-flip: each sample is flipped in every other epoch, from a random start; crops and cutout unchanged', () => {
    let startsFlipped = 0;
    for (let i = 0; i < 1000; i++) {
      const byEpoch = [1, 2, 3, 4, 5].map((e) => sampleAugmentation(7, e, i, 4, true));
      for (let e = 1; e < 5; e++) assert.notEqual(byEpoch[e].flip, byEpoch[e - 1].flip, `sample ${i}: epochs ${e} and ${e + 1}`);
      if (byEpoch[0].flip) startsFlipped++;
      const coin = sampleAugmentation(7, 3, i, 4);
      const alt = byEpoch[2];
      assert.deepEqual([alt.top, alt.left, alt.cy, alt.cx], [coin.top, coin.left, coin.cy, coin.cx]);
    }
    assert.ok(startsFlipped > 450 && startsFlipped < 550, `${startsFlipped}/1000 start flipped`);
    // buildBatchX passes the option on: two consecutive epochs of one image without crop are mirror images
    const src = Uint8Array.from({ length: 3072 }, (_, i) => (i * 53 + 7) & 255);
    const opts = { crop: false, flip: true, alternateFlip: true };
    const a = buildBatchX(src, [0], 1, 3, opts);
    const b = buildBatchX(src, [0], 2, 3, opts);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) assert.equal(a[c * 1024 + y * 32 + x], b[c * 1024 + y * 32 + 31 - x]);
    }
  });

  test('a batch is augmented per sample index, whatever its position in the batch', () => {
    const images = new Uint8Array(3 * 3072);
    for (let k = 0; k < 3; k++) images.set(rgbPattern(32, 32, k), k * 3072);
    const opts = { crop: true, flip: true, cutout: 8 };
    const ab = buildBatchX(images, [2, 0], 5, 9, opts);
    const ba = buildBatchX(images, [0, 2], 5, 9, opts);
    assert.deepEqual(ab.subarray(0, 3072), ba.subarray(3072));
    assert.deepEqual(ab.subarray(3072), ba.subarray(0, 3072));
    const one = new Float32Array(3072);
    augmentInto(one, 0, images, 2 * 3072, sampleAugmentation(9, 5, 2), opts);
    assert.deepEqual(ab.subarray(0, 3072), one);
  });
});
