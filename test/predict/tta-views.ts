/**
 * Test-time augmentation views written out independently of src/data/tta.ts (not a test file): for the tests that
 * check the classifier's and `resnet eval`'s TTA against views made by hand. One image at a time, [3,32,32] in
 * normalised units: the mirror image, and shifts by 2 pixels with black (the seed's Normalize of a 0 pixel,
 * (0 − mean) / std per channel, the training crop's zero padding) where the picture moved away.
 */

const SIDE = 32;
const PLANE = SIDE * SIDE;
/** torchvision's Normalize constants of the seed, channel by channel */
const BLACK = [(0 - 0.4914) / 0.2023, (0 - 0.4822) / 0.1994, (0 - 0.4465) / 0.201];

/** out(c, y, x) = img(c, y, 31 − x) */
export function mirror(img: Float32Array): Float32Array {
  const out = new Float32Array(3 * PLANE);
  for (let c = 0; c < 3; c++) for (let y = 0; y < SIDE; y++) for (let x = 0; x < SIDE; x++) {
    out[c * PLANE + y * SIDE + x] = img[c * PLANE + y * SIDE + (SIDE - 1 - x)];
  }
  return out;
}

/** The picture moved d pixels down and right (d < 0: up and left): out(c, y, x) = img(c, y − d, x − d), or black. */
export function moved(img: Float32Array, d: number): Float32Array {
  const out = new Float32Array(3 * PLANE);
  for (let c = 0; c < 3; c++) for (let y = 0; y < SIDE; y++) for (let x = 0; x < SIDE; x++) {
    const sy = y - d, sx = x - d;
    const inside = sy >= 0 && sy < SIDE && sx >= 0 && sx < SIDE;
    out[c * PLANE + y * SIDE + x] = inside ? img[c * PLANE + sy * SIDE + sx] : BLACK[c];
  }
  return out;
}

/** The views of one image that a mode averages (their order does not matter to a mean). */
export function viewsOf(img: Float32Array, mode: 'off' | 'flip' | 'flip-shift'): Float32Array[] {
  if (mode === 'off') return [img];
  const m = mirror(img);
  if (mode === 'flip') return [img, m];
  return [img, m, moved(img, -2), moved(img, 2), moved(m, -2), moved(m, 2)];
}

/** Softmax in float64. */
export function softmax64(logits: ArrayLike<number>): number[] {
  const max = Math.max(...Array.from(logits));
  const e = Array.from(logits, (v) => Math.exp(v - max));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** The element-wise mean of equal-length rows. */
export function meanRows(rows: readonly number[][]): number[] {
  return rows[0].map((_, j) => rows.reduce((s, r) => s + r[j], 0) / rows.length);
}
