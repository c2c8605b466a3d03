/**
 * Test-time augmentation: a batch is classified as the mean of the softmax probabilities of several views of it.
 *
 * Views (on normalised [n,3,H,W] inputs, the layout the model reads):
 * - off: the image alone.
 * - flip: the image and its horizontal mirror (the training augmentation's flip).
 * - flip-shift: those two, each also translated by 2 pixels towards the top-left and towards the bottom-right, six
 *   views in all: the translations the training crop (padding 4) showed the network. Pixels shifted in are black,
 *   as the crop's zero padding, i.e. (0 − mean) / std in normalised units.
 *
 * The flip and the shifts are exact permutations and fills, so a batch's TTA result equals the mean, view by view,
 * of classifying each view alone; a left-right symmetric image gives its two flip views the same logits.
 * What it is not: the model (it takes any forward function) or the decision of when to use it (the CLI's --tta).
 */
import { CIFAR_MEAN, CIFAR_STD } from './normalize';

export type TtaMode = 'off' | 'flip' | 'flip-shift';
export const TTA_MODES: readonly TtaMode[] = ['off', 'flip', 'flip-shift'];

/** The pixel offset of flip-shift's translations. */
export const TTA_SHIFT = 2;

/** How many views a mode averages. */
export function ttaViewCount(mode: TtaMode): number {
  return mode === 'off' ? 1 : mode === 'flip' ? 2 : 6;
}

export function checkTtaMode(mode: string): TtaMode {
  if (!(TTA_MODES as readonly string[]).includes(mode)) {
    throw new Error(`--tta must be one of ${TTA_MODES.join(', ')}, received ${mode}`);
  }
  return mode as TtaMode;
}

/** The normalised value of a black pixel in channel c (what the training crop pads with). */
function blackValue(c: number): number {
  return c < 3 ? (0 - CIFAR_MEAN[c]) / CIFAR_STD[c] : 0;
}

/** x mirrored left-right: out[n,c,h,w] = x[n,c,h,W-1-w]. */
export function flipBatch(x: Float32Array, shape: readonly number[]): Float32Array {
  const [n, c, h, w] = shape;
  const out = new Float32Array(n * c * h * w);
  for (let row = 0; row < n * c * h; row++) {
    const at = row * w;
    for (let j = 0; j < w; j++) out[at + j] = x[at + w - 1 - j];
  }
  return out;
}

/**
 * x translated by (dy, dx) pixels: out[.., y, x] = in[.., y - dy, x - dx], black where that falls outside.
 * dy = dx = 2 moves the picture towards the bottom-right.
 */
export function shiftBatch(x: Float32Array, shape: readonly number[], dy: number, dx: number): Float32Array {
  const [n, c, h, w] = shape;
  const out = new Float32Array(n * c * h * w);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const plane = (b * c + ch) * h * w;
      const fill = blackValue(ch);
      for (let y = 0; y < h; y++) {
        const sy = y - dy;
        for (let xx = 0; xx < w; xx++) {
          const sx = xx - dx;
          out[plane + y * w + xx] = sy >= 0 && sy < h && sx >= 0 && sx < w ? x[plane + sy * w + sx] : fill;
        }
      }
    }
  }
  return out;
}

/** The views a mode averages, the untouched input first. */
export function ttaViews(x: Float32Array, shape: readonly number[], mode: TtaMode): Float32Array[] {
  if (mode === 'off') return [x];
  const flipped = flipBatch(x, shape);
  if (mode === 'flip') return [x, flipped];
  const views = [x, flipped];
  for (const v of [x, flipped]) {
    views.push(shiftBatch(v, shape, -TTA_SHIFT, -TTA_SHIFT), shiftBatch(v, shape, TTA_SHIFT, TTA_SHIFT));
  }
  return views;
}

/** Row-wise softmax of [n, k] logits, in float64 sums. */
export function softmaxRows(logits: ArrayLike<number>, n: number, k: number): Float32Array {
  const out = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let j = 0; j < k; j++) max = Math.max(max, logits[i * k + j]);
    let sum = 0;
    for (let j = 0; j < k; j++) sum += Math.exp(logits[i * k + j] - max);
    for (let j = 0; j < k; j++) out[i * k + j] = Math.exp(logits[i * k + j] - max) / sum;
  }
  return out;
}

/**
 * The TTA probabilities of a batch: `forward` maps one view ([n,3,H,W] values) to its [n, k] logits; the result
 * is the mean over the views of their softmax, [n, k].
 */
export function ttaProbabilities(
  forward: (view: Float32Array) => ArrayLike<number>, x: Float32Array, shape: readonly number[], k: number, mode: TtaMode,
): Float32Array {
  const n = shape[0];
  const views = ttaViews(x, shape, mode);
  const mean = new Float32Array(n * k);
  for (const v of views) {
    const p = softmaxRows(forward(v), n, k);
    for (let i = 0; i < mean.length; i++) mean[i] += p[i] / views.length;
  }
  return mean;
}
