/**
 * Tests of src/data/decode.ts (with header.ts, bmp.ts, resize.ts, normalize.ts): every format, the odd modes of
 * palette, grey, 16-bit and alpha images, EXIF orientations, decompression bombs, bad files, Pillow parity (golden
 * fixtures made by fixtures/make_pil_fixture.py), and the model's preprocessing.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { expectClose } from '../helpers/close';
import {
  decodeImage,
  decodeJpegGroup,
  DEFAULT_MAX_PIXELS,
  ImageDecodeError,
  isPlainJpeg,
  preprocessForModel,
  readImageHeaderSize,
  resizeRgb,
  sniffImageType,
} from '../../src/data/decode';
import { nativeJpegDecoder } from '../../src/data/jpeg-native';
import { CIFAR_MEAN, CIFAR_STD, normalizeImage } from '../../src/data/normalize';
import fixture from './fixtures/pil_fixture.json';
import { encode, makeBmp, makePng, rgbPattern, smoothPattern } from './make';

const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

async function rejectsWith(p: Promise<unknown>, code: string, text?: RegExp): Promise<ImageDecodeError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ImageDecodeError, `expected ImageDecodeError, received ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (text) assert.match(err.message, text);
    return err;
  }
  assert.fail(`expected a rejection with code ${code}`);
}

describe('formats', () => {
  test('lossless formats decode to the exact pixels, with the right format name', async () => {
    const px = rgbPattern(13, 7, 4);
    for (const fmt of ['png', 'webp', 'tiff'] as const) {
      const bytes = await encode(px, 13, 7, fmt);
      assert.equal(sniffImageType(bytes), fmt);
      assert.deepEqual(readImageHeaderSize(bytes), { type: fmt, width: 13, height: 7 });
      const img = await decodeImage(bytes);
      assert.equal(img.format, fmt);
      assert.equal(img.width, 13);
      assert.equal(img.height, 7);
      assert.deepEqual(img.data, px, fmt);
    }
  });

  test('headers: type and size of GIF, BMP, lossy WebP (VP8), WebP with alpha (VP8X); null for other bytes', async () => {
    const px = rgbPattern(19, 11, 1);
    const rgba = new Uint8Array(19 * 11 * 4).map((_, i) => (i * 13) % 256);
    assert.deepEqual(readImageHeaderSize(await encode(px, 19, 11, 'gif')), { type: 'gif', width: 19, height: 11 });
    assert.deepEqual(readImageHeaderSize(makeBmp({ width: 19, height: 11, rgb: px, topDown: true })), { type: 'bmp', width: 19, height: 11 });
    const vp8 = new Uint8Array(await sharp(px, { raw: { width: 19, height: 11, channels: 3 } }).webp({ quality: 80 }).toBuffer());
    assert.deepEqual(readImageHeaderSize(vp8), { type: 'webp', width: 19, height: 11 });
    const vp8x = new Uint8Array(await sharp(rgba, { raw: { width: 19, height: 11, channels: 4 } }).webp({ quality: 80 }).toBuffer());
    assert.equal(String.fromCharCode(...vp8x.subarray(12, 16)), 'VP8X', 'the test file has an extended header');
    assert.deepEqual(readImageHeaderSize(vp8x), { type: 'webp', width: 19, height: 11 });
    assert.equal(sniffImageType(Buffer.from('GIF87a')), 'gif');
    assert.equal(sniffImageType(Buffer.from('<html>')), null);
    assert.equal(sniffImageType(new Uint8Array([0xff, 0xd8])), null, 'too short for a JPEG');
    assert.equal(readImageHeaderSize(Buffer.from('plain text')), null);
  });

  test('JPEG decodes exactly as Pillow decodes it (golden)', async () => {
    const bytes = b64(fixture.jpeg.file);
    assert.equal(sniffImageType(bytes), 'jpeg');
    assert.deepEqual(readImageHeaderSize(bytes), { type: 'jpeg', width: 32, height: 32 });
    const img = await decodeImage(bytes);
    assert.deepEqual(img.data, b64(fixture.jpeg.decoded));
  });

  test('progressive JPEG decodes close to its source', async () => {
    const px = smoothPattern(32, 32, 1);
    const bytes = new Uint8Array(await sharp(px, { raw: { width: 32, height: 32, channels: 3 } }).jpeg({ quality: 95, progressive: true }).toBuffer());
    const img = await decodeImage(bytes);
    expectClose(img.data, px, { atol: 12, rtol: 0 }, 'progressive jpeg');
  });

  test('GIF: an animated file gives its first frame', async () => {
    const red = await encode(new Uint8Array(4 * 3 * 3).fill(0).map((_, i) => (i % 3 === 0 ? 255 : 0)), 4, 3, 'png');
    const blue = await encode(new Uint8Array(4 * 3 * 3).fill(0).map((_, i) => (i % 3 === 2 ? 255 : 0)), 4, 3, 'png');
    const gif = new Uint8Array(await sharp([red, blue], { join: { animated: true } }).gif().toBuffer());
    assert.equal((await sharp(gif).metadata()).pages, 2, 'the test file has two frames');
    const img = await decodeImage(gif);
    assert.equal(img.format, 'gif');
    assert.deepEqual([img.width, img.height], [4, 3]);
    for (let p = 0; p < 12; p++) assert.deepEqual([...img.data.subarray(3 * p, 3 * p + 3)], [255, 0, 0]);
  });

  test('BMP: 24-bit bottom-up, 24-bit top-down and 8-bit palette', async () => {
    const px = rgbPattern(5, 3, 2);
    for (const topDown of [false, true]) {
      const img = await decodeImage(makeBmp({ width: 5, height: 3, rgb: px, topDown }));
      assert.equal(img.format, 'bmp');
      assert.deepEqual(img.data, px, `topDown=${topDown}`);
    }
    const palette = new Uint8Array([10, 20, 30, 200, 100, 0, 0, 0, 255]);
    const indices = new Uint8Array([0, 1, 2, 2, 1, 0]);
    const img = await decodeImage(makeBmp({ width: 3, height: 2, indices, palette }));
    assert.deepEqual([...img.data], [10, 20, 30, 200, 100, 0, 0, 0, 255, 0, 0, 255, 200, 100, 0, 10, 20, 30]);
  });
});

describe('modes', () => {
  test('RGBA: alpha dropped without compositing, as PIL convert("RGB") (golden)', async () => {
    const img = await decodeImage(b64(fixture.rgba.file));
    assert.deepEqual(img.data, b64(fixture.rgba.decoded));
    // pixel 0 is fully transparent (alpha 0) and keeps its stored colour
    const px = makePng({ width: 1, height: 1, colorType: 6, bitDepth: 8, samples: new Uint8Array([90, 80, 70, 0]) });
    assert.deepEqual([...(await decodeImage(px)).data], [90, 80, 70]);
  });

  test('grayscale and gray+alpha are replicated to RGB', async () => {
    const g = await decodeImage(makePng({ width: 3, height: 1, colorType: 0, bitDepth: 8, samples: new Uint8Array([0, 77, 255]) }));
    assert.deepEqual([...g.data], [0, 0, 0, 77, 77, 77, 255, 255, 255]);
    const ga = await decodeImage(makePng({ width: 2, height: 1, colorType: 4, bitDepth: 8, samples: new Uint8Array([40, 0, 200, 128]) }));
    assert.deepEqual([...ga.data], [40, 40, 40, 200, 200, 200]);
  });

  test('palette with tRNS gives the palette colours, transparency dropped', async () => {
    const plte = new Uint8Array([255, 0, 0, 0, 255, 0, 1, 2, 3]);
    const img = await decodeImage(makePng({ width: 3, height: 1, colorType: 3, bitDepth: 8, samples: new Uint8Array([2, 0, 1]), plte, trns: new Uint8Array([0, 128, 255]) }));
    assert.deepEqual([...img.data], [1, 2, 3, 255, 0, 0, 0, 255, 0]);
  });

  test('16-bit is scaled to 8 bits (v/257), not clipped', async () => {
    const v = [0, 257, 32768, 65535];
    const samples = new Uint8Array(v.flatMap((x) => [x >> 8, x & 255]));
    const g = await decodeImage(makePng({ width: 4, height: 1, colorType: 0, bitDepth: 16, samples }));
    assert.deepEqual([...g.data], [0, 0, 0, 1, 1, 1, 128, 128, 128, 255, 255, 255]);
    const rgb = makePng({ width: 1, height: 1, colorType: 2, bitDepth: 16, samples: new Uint8Array([0xff, 0xff, 0x80, 0x00, 0x01, 0x01]) });
    assert.deepEqual([...(await decodeImage(rgb)).data], [255, 128, 1]);
  });

  test('CMYK JPEG is converted to RGB through colour management', async () => {
    const px = new Uint8Array(8 * 8 * 3).map((_, i) => (i % 3 === 0 ? 200 : 40));
    const cmyk = new Uint8Array(await sharp(px, { raw: { width: 8, height: 8, channels: 3 } }).toColourspace('cmyk').jpeg({ quality: 100 }).toBuffer());
    const meta = await sharp(cmyk).metadata();
    assert.equal(meta.space, 'cmyk', 'the test file is CMYK');
    const img = await decodeImage(cmyk);
    assert.equal(img.data.length, 8 * 8 * 3);
    // a strong red stays a strong red (profile conversions are not exact inverses)
    assert.ok(img.data[0] > 150 && img.data[1] < 90 && img.data[2] < 90, `received ${[...img.data.subarray(0, 3)]}`);
  });
});

/** The displayed image for EXIF orientation o of a stored w x h image S (EXIF 2.32, tag 0x0112). */
function oriented(s: Uint8Array, w: number, h: number, o: number): { data: Uint8Array; w: number; h: number } {
  const swap = o >= 5;
  const W = swap ? h : w;
  const H = swap ? w : h;
  const out = new Uint8Array(s.length);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const [sy, sx] = [
        [y, x],
        [y, w - 1 - x],
        [h - 1 - y, w - 1 - x],
        [h - 1 - y, x],
        [x, y],
        [h - 1 - x, y],
        [h - 1 - x, w - 1 - y],
        [x, w - 1 - y],
      ][o - 1];
      out.set(s.subarray(3 * (sy * w + sx), 3 * (sy * w + sx) + 3), 3 * (y * W + x));
    }
  }
  return { data: out, w: W, h: H };
}

test('EXIF orientations 1-8 give the pre-rotated image', async () => {
  const px = rgbPattern(5, 3, 9);
  for (let o = 1; o <= 8; o++) {
    const bytes = new Uint8Array(await sharp(px, { raw: { width: 5, height: 3, channels: 3 } }).png().withMetadata({ orientation: o }).toBuffer());
    const img = await decodeImage(bytes);
    const want = oriented(px, 5, 3, o);
    assert.deepEqual([img.width, img.height], [want.w, want.h], `orientation ${o}`);
    assert.deepEqual(img.data, want.data, `orientation ${o}`);
  }
});

describe('bad files and decompression bombs', () => {
  test('empty, text named .jpg, HTML named .png', async () => {
    await rejectsWith(decodeImage(new Uint8Array(0), { name: 'cat/0042.jpg' }), 'empty', /^image cat\/0042\.jpg: empty file/);
    await rejectsWith(decodeImage(Buffer.from('just some text\n'), { name: 'a.jpg' }), 'not-an-image', /"just some te"/);
    await rejectsWith(decodeImage(Buffer.from('<!DOCTYPE html><html></html>'), { name: 'b.png' }), 'not-an-image', /<!DOCTYPE/);
  });

  test('truncated JPEG and PNG are named truncated', async () => {
    const noise = await encode(rgbPattern(48, 48, 3), 48, 48, 'jpeg');
    await rejectsWith(decodeImage(noise.subarray(0, Math.floor(noise.length * 0.6)), { name: 'x.jpg' }), 'truncated', /truncated JPEG/);
    const png = await encode(rgbPattern(40, 40, 1), 40, 40, 'png');
    await rejectsWith(decodeImage(png.subarray(0, png.length - 100), { name: 'y.png' }), 'truncated', /truncated PNG/);
    const bmp = makeBmp({ width: 5, height: 3, rgb: rgbPattern(5, 3, 2) });
    await rejectsWith(decodeImage(bmp.subarray(0, bmp.length - 10)), 'truncated', /truncated BMP/);
  });

  test('a PNG with a corrupt IDAT is undecodable', async () => {
    const png = Buffer.from(await encode(rgbPattern(40, 40, 1), 40, 40, 'png'));
    const at = png.indexOf('IDAT') + 20;
    for (let i = 0; i < 30; i++) png[at + i] ^= 0x5a;
    const err = await rejectsWith(decodeImage(png, { name: 'z.png' }), 'undecodable');
    assert.match(err.message, /^image z\.png: corrupt PNG/);
  });

  test('decompression bombs are refused from the header (60000x60000, and 1 row 100M wide)', async () => {
    const before = process.memoryUsage().rss;
    const big = makePng({ width: 60000, height: 60000, colorType: 2, bitDepth: 8, samples: new Uint8Array(0), bombOnly: true });
    assert.ok(big.length < 200);
    await rejectsWith(decodeImage(big), 'too-many-pixels', /60000x60000 = 3600000000 pixels.*before decoding/);
    const wide = makePng({ width: 100_000_000, height: 1, colorType: 0, bitDepth: 8, samples: new Uint8Array(0), bombOnly: true });
    await rejectsWith(decodeImage(wide), 'too-many-pixels', /100000000x1/);
    assert.ok(process.memoryUsage().rss - before < 200 * 2 ** 20, 'no large buffer was allocated');
    assert.equal(DEFAULT_MAX_PIXELS, 89_478_485);
    // the limit is an option: a 100x100 image passes by default and not under a 5000-pixel limit
    const ok = await encode(rgbPattern(100, 100, 0), 100, 100, 'jpeg');
    assert.equal((await decodeImage(ok)).width, 100);
    await rejectsWith(decodeImage(ok, { maxPixels: 5000 }), 'too-many-pixels');
  });

  test('a corrupt JPEG decoded among many concurrent decodes keeps its reason', async () => {
    // libvips keeps one error buffer per process: before decodeImage retried, about 1 in 30 of these failures
    // came back as "Input buffer has corrupt header:" with the reason (the bad Huffman table) lost
    const good = await encode(rgbPattern(64, 64, 4), 64, 64, 'jpeg');
    const bad = Buffer.from(good);
    const dht = bad.indexOf(Buffer.from([0xff, 0xc4]));
    bad.fill(0xff, dht + 5, dht + 21); // the 16 code-length counts: more codes than 16 bits can hold
    const jobs = Array.from({ length: 400 }, (_, i) =>
      decodeImage(i % 4 === 0 ? bad : good, { name: `${i}.jpg` }).then(() => null, (e: Error) => e.message));
    const errors = (await Promise.all(jobs)).filter((m): m is string => m !== null);
    assert.equal(errors.length, 100);
    for (const m of errors) assert.match(m, /corrupt JPEG \(.*: \S.*Huffman/, m);
  });

  test('BMP with RLE compression is unsupported, not a crash', async () => {
    const bmp = Buffer.from(makeBmp({ width: 3, height: 2, indices: new Uint8Array(6), palette: new Uint8Array(3) }));
    bmp.writeUInt32LE(1, 30); // BI_RLE8
    await rejectsWith(decodeImage(bmp), 'unsupported', /RLE/);
  });
});

describe('resize and model input', () => {
  test('resizeRgb equals Pillow resize((32, 32)) bit for bit, shrinking and enlarging (golden)', () => {
    for (const r of fixture.resize) {
      const out = resizeRgb({ data: rgbPattern(r.width, r.height, r.k), width: r.width, height: r.height }, 32, 32);
      assert.deepEqual(out, b64(r.out), `${r.width}x${r.height}`);
    }
  });

  test('normalizeImage: (v/255 - mean) / std per channel, HWC to CHW', () => {
    const px = new Uint8Array([0, 128, 255, 10, 20, 30]); // two pixels
    const out = normalizeImage(px);
    const want: number[] = [];
    for (let c = 0; c < 3; c++) for (let p = 0; p < 2; p++) want.push((px[3 * p + c] / 255 - CIFAR_MEAN[c]) / CIFAR_STD[c]);
    expectClose(out, want, { atol: 1e-6, rtol: 0 }, 'normalize');
    assert.throws(() => normalizeImage(new Uint8Array(4)), /normalizeImage: expected HWC RGB bytes/);
  });

  test('preprocessForModel = decode -> PIL bicubic 32x32 -> normalise', async () => {
    const r = fixture.resize[0];
    const png = await encode(rgbPattern(r.width, r.height, r.k), r.width, r.height, 'png');
    const x = await preprocessForModel(png);
    assert.equal(x.length, 3 * 32 * 32);
    assert.deepEqual(x, normalizeImage(b64(r.out)));
    const same = await encode(rgbPattern(32, 32, 5), 32, 32, 'png');
    assert.deepEqual(await preprocessForModel(same), normalizeImage(rgbPattern(32, 32, 5)));
    await rejectsWith(preprocessForModel(Buffer.from('nope')), 'not-an-image');
  });
});

describe('group decode of plain JPEGs', () => {
  test('same pixels as one-by-one decoding', async () => {
    const files = await Promise.all([0, 1, 2, 3].map((k) => encode(rgbPattern(32, 32, k), 32, 32, 'jpeg')));
    assert.ok(files.every((f) => isPlainJpeg(f, 32, 32)));
    const group = await decodeJpegGroup(files, 32, 32);
    for (let k = 0; k < 4; k++) assert.deepEqual(group.subarray(k * 3072, (k + 1) * 3072), (await decodeImage(files[k])).data, `image ${k}`);
  });

  const jpegAddon = nativeJpegDecoder();
  const noAddon = jpegAddon === null && process.env.RESNET_REQUIRE_NATIVE !== '1' ? 'the JPEG addon is not built (libjpeg-dev missing at install)' : false;

  test('the JPEG addon decodes what sharp decodes, bit for bit, and refuses the rest image by image', { skip: noAddon }, async () => {
    assert.ok(jpegAddon, 'the JPEG addon is built (RESNET_REQUIRE_NATIVE=1)');
    const variants: [number, number, sharp.JpegOptions][] = [
      [32, 32, { quality: 90 }],
      [32, 32, { quality: 75, chromaSubsampling: '4:4:4' }],
      [32, 32, { quality: 30, progressive: true }],
      [33, 17, { quality: 95 }], // sizes that are not whole MCUs
      [64, 48, { quality: 85, optimiseCoding: true }],
    ];
    for (const [w, h, o] of variants) {
      const files = await Promise.all([0, 1, 2].map(async (k) => new Uint8Array(await sharp(Buffer.from(k === 2 ? smoothPattern(w, h, 3) : rgbPattern(w, h, k)), { raw: { width: w, height: h, channels: 3 } }).jpeg(o).toBuffer())));
      const { rgb, ok } = jpegAddon.decode(files, w, h);
      assert.deepEqual([...ok], [1, 1, 1], `${w}x${h} ${JSON.stringify(o)}`);
      for (let k = 0; k < 3; k++) {
        assert.deepEqual(rgb.subarray(k * w * h * 3, (k + 1) * w * h * 3), (await decodeImage(files[k])).data, `${w}x${h} ${JSON.stringify(o)} image ${k}`);
      }
    }
    const good = new Uint8Array(await encode(rgbPattern(32, 32, 7), 32, 32, 'jpeg'));
    const huffman = Uint8Array.from(good);
    const dht = Buffer.from(huffman).indexOf(Buffer.from([0xff, 0xc4]));
    huffman.fill(0xff, dht + 5, dht + 21);
    const gray = new Uint8Array(await sharp(Buffer.from(good)).toColourspace('b-w').jpeg().toBuffer());
    const list = [good, huffman, good.subarray(0, good.length - 60), gray, new Uint8Array(await encode(rgbPattern(16, 16, 1), 16, 16, 'jpeg')), Buffer.from('not a jpeg'), good];
    const { rgb, ok } = jpegAddon.decode(list, 32, 32);
    assert.deepEqual([...ok], [1, 0, 0, 0, 0, 0, 1], 'good, bad Huffman table, truncated, grayscale, 16x16, text, good');
    const want = (await decodeImage(good)).data;
    assert.deepEqual(rgb.subarray(0, 3072), want);
    assert.deepEqual(rgb.subarray(6 * 3072), want, 'the refused images in between do not disturb the next');
    // a group with a bad member throws, so that its caller decodes the members one by one and names the bad one
    await assert.rejects(decodeJpegGroup([good, huffman], 32, 32));
  });

  test('files whose pixels need per-image handling are not plain', async () => {
    const base = await encode(rgbPattern(32, 32, 1), 32, 32, 'jpeg');
    const exif = new Uint8Array(await sharp(base).withMetadata({ orientation: 6 }).jpeg().toBuffer());
    const gray = new Uint8Array(await sharp(base).toColourspace('b-w').jpeg().toBuffer());
    assert.equal(isPlainJpeg(exif, 32, 32), false, 'EXIF');
    assert.equal(isPlainJpeg(gray, 32, 32), false, 'grayscale');
    assert.equal(isPlainJpeg(base.subarray(0, base.length - 50), 32, 32), false, 'truncated');
    assert.equal(isPlainJpeg(base, 16, 16), false, 'other size');
  });
});
