/**
 * Test-time augmentation (src/data/tta.ts): the views are exact flips and shifts (checked pixel by pixel on a
 * written-out image), the TTA of a batch is the mean of the views' softmax, a left-right symmetric input gives its
 * flip views the same answer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkTtaMode, flipBatch, shiftBatch, softmaxRows, ttaProbabilities, ttaViewCount, ttaViews } from '../../src/data/tta';

test('flipBatch mirrors each row; shiftBatch moves the picture and fills with black in normalised units', () => {
  // one image, 1 channel (red), 2x3: rows [1 2 3], [4 5 6]
  const x = Float32Array.from([1, 2, 3, 4, 5, 6]);
  assert.deepEqual(Array.from(flipBatch(x, [1, 1, 2, 3])), [3, 2, 1, 6, 5, 4]);
  const black = (0 - 0.4914) / 0.2023; // torchvision's Normalize of a 0 pixel, red channel
  const s = Array.from(shiftBatch(x, [1, 1, 2, 3], 1, 1)); // towards the bottom-right
  const want = [black, black, black, black, 1, 2];
  s.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6, `shift[${i}] = ${v}, expected ${want[i]}`));
  const t = Array.from(shiftBatch(x, [1, 1, 2, 3], -1, -1)); // towards the top-left
  const wantT = [5, 6, black, black, black, black];
  t.forEach((v, i) => assert.ok(Math.abs(v - wantT[i]) < 1e-6, `shift[${i}] = ${v}, expected ${wantT[i]}`));
});

test('views: off 1, flip 2, flip-shift 6, the input first; bad modes refused by name', () => {
  const x = Float32Array.from({ length: 2 * 3 * 4 * 4 }, (_, i) => Math.sin(i));
  for (const [mode, n] of [['off', 1], ['flip', 2], ['flip-shift', 6]] as const) {
    const v = ttaViews(x, [2, 3, 4, 4], mode);
    assert.equal(v.length, n);
    assert.equal(ttaViewCount(mode), n);
    assert.equal(v[0], x);
  }
  assert.throws(() => checkTtaMode('rotate'), /^Error: --tta must be one of off, flip, flip-shift, received rotate$/);
});

test('TTA of a batch is the mean of the softmax of its views, and each image is independent of the others', () => {
  const shape = [3, 3, 4, 4];
  const x = Float32Array.from({ length: 3 * 48 }, (_, i) => Math.cos(0.7 * i));
  // a toy "model": logits are weighted sums of the pixels, different weights per class, not flip-symmetric
  const k = 4;
  const forward = (v: Float32Array) => {
    const out = new Float32Array(shape[0] * k);
    for (let b = 0; b < shape[0]; b++) {
      for (let j = 0; j < k; j++) {
        let s = 0;
        for (let p = 0; p < 48; p++) s += v[b * 48 + p] * Math.sin(p * (j + 1));
        out[b * k + j] = s / 8;
      }
    }
    return out;
  };
  const got = ttaProbabilities(forward, x, shape, k, 'flip-shift');
  const views = ttaViews(x, shape, 'flip-shift');
  const probs = views.map((v) => softmaxRows(forward(v), shape[0], k));
  for (let i = 0; i < got.length; i++) {
    const mean = probs.reduce((s, p) => s + p[i], 0) / probs.length;
    assert.ok(Math.abs(got[i] - mean) < 1e-6, `prob ${i}: ${got[i]} vs mean of views ${mean}`);
  }
  // the second image alone gives what it got inside the batch
  const one = ttaProbabilities(forward, x.slice(48, 96), [1, 3, 4, 4], k, 'flip-shift');
  for (let j = 0; j < k; j++) assert.ok(Math.abs(one[j] - got[k + j]) < 1e-6);
  // flip's mean differs from the plain answer for this asymmetric model (the views are really used)
  const plain = softmaxRows(forward(x), 3, k);
  const flip = ttaProbabilities(forward, x, shape, k, 'flip');
  assert.ok(plain.some((p, i) => Math.abs(p - flip[i]) > 1e-3));
});

test('a left-right symmetric image: flip TTA gives exactly the plain answer', () => {
  const shape = [1, 3, 2, 4];
  const x = Float32Array.from([1, 2, 2, 1, 3, 0, 0, 3, 5, 6, 6, 5, 7, 8, 8, 7, 0, 1, 1, 0, 2, 9, 9, 2]);
  const forward = (v: Float32Array) => [v[0] - v[3] + 2 * v[1], v[5] * 0.5, -v[8]];
  const plain = softmaxRows(forward(x), 1, 3);
  const flip = ttaProbabilities(forward, x, shape, 3, 'flip');
  for (let j = 0; j < 3; j++) assert.equal(flip[j], plain[j]);
});
