/**
 * ToTensor + Normalize against PyTorch's own numbers, written out here rather than computed from CIFAR_MEAN and
 * CIFAR_STD (a test that takes its expected values from the constants it checks passes with two of them swapped).
 * The values are torchvision 0.14's ToTensor + Normalize((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)) of
 * the 2x2 image below, printed by scripts/fixtures/normalize_values.py; bytes 0 and 255 are, per channel,
 * (0/255 - mean) / std and (1 - mean) / std.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildBatchX } from '../../src/data/augment';
import { normalizeImage } from '../../src/data/normalize';

/** HWC: (0,0,0) (255,255,255) on the first row, (1,128,254) (77,3,200) on the second. */
const PIXELS = new Uint8Array([0, 0, 0, 255, 255, 255, 1, 128, 254, 77, 3, 200]);

/** CHW, from scripts/fixtures/normalize_values.py. */
const EXPECTED = [
  [-2.4290657, 2.514088, -2.4096808, -0.9364271], // R
  [-2.4182549, 2.5967903, 0.099101394, -2.3592544], // G
  [-2.221393, 2.7537313, 2.734221, 1.6806653], // B
];

test("normalizeImage: PyTorch's float32 values, bit for bit, for bytes 0 and 255 of each channel and a few others", () => {
  const out = normalizeImage(PIXELS);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < 4; p++) {
      assert.equal(out[c * 4 + p], Math.fround(EXPECTED[c][p]), `channel ${'RGB'[c]}, pixel ${p} (bytes ${PIXELS.subarray(3 * p, 3 * p + 3).join(',')})`);
    }
  }
});

test('buildBatchX without augmentation: the same values in a 32x32 training input', () => {
  const image = new Uint8Array(32 * 32 * 3);
  // the four pixels at (0,0) (0,1) (1,0) (1,1); the rest 0
  image.set(PIXELS.subarray(0, 6), 0);
  image.set(PIXELS.subarray(6, 12), 32 * 3);
  const x = buildBatchX(image, [0], 0, 0, null);
  const at = [0, 1, 32, 33];
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < 4; p++) assert.equal(x[c * 1024 + at[p]], Math.fround(EXPECTED[c][p]), `channel ${'RGB'[c]}, pixel ${at[p]}`);
  }
});
