/**
 * The seed's training augmentation, fused with ToTensor + Normalize into one pass per image:
 * RandomCrop(32, padding=4 (or --crop-padding), zero fill) -> RandomHorizontalFlip(p=0.5) -> ToTensor -> Normalize(mean, std)
 * -> optional Cutout (a square of side L, centre uniform over the image, clipped at the borders, set to 0 in the
 * normalised tensor, as the reference implementation applies its mask after Normalize).
 *
 * Every random choice of sample i in epoch e comes from Rng(hashSeed(seed, e, i, tag)) alone, drawn in a fixed
 * order (crop top, crop left, flip, cutout y, cutout x) whatever is enabled: so results never depend on batch
 * composition, thread count or timing, and turning Cutout on does not change the crops.
 *
 * Not here: batching and shuffling (loader.ts).
 * References: torchvision.transforms.RandomCrop / RandomHorizontalFlip; T. DeVries & G. Taylor, "Improved
 * Regularization of Convolutional Neural Networks with Cutout" (2017), arXiv:1708.04552.
 */
import { hashSeed, Rng } from '../util/rng';
import { IMAGE_BYTES, IMAGE_SIZE, NORM_LUT, normalizeInto } from './normalize';

export interface AugmentOptions {
  /** RandomCrop(32, padding=cropPadding) */
  crop: boolean;
  /** RandomCrop's zero padding in pixels (default CROP_PADDING, the seed's 4); the crop moves by up to this much */
  cropPadding?: number;
  /** RandomHorizontalFlip(0.5) */
  flip: boolean;
  /** Cutout side length in pixels (0 or absent: off) */
  cutout?: number;
  /**
   * With flip: each sample's flip alternates from epoch to epoch (flipped in every other epoch, from a per-sample
   * random start) instead of a fresh coin per epoch, so any two consecutive epochs show both mirror images
   * (airbench's "alternating flip", Jordan 2024). The other draws are unchanged.
   */
  alternateFlip?: boolean;
}

export const CROP_PADDING = 4;
const AUGMENT_TAG = 0x61756731; // separates these draws from other users of hashSeed(seed, epoch, index)
const FLIP_START_TAG = 0x666c7031;

/** The random choices for one sample. top/left are offsets into the zero-padded image (0..2·padding: 0..8 at 4). */
export interface SampleAugmentation {
  top: number;
  left: number;
  flip: boolean;
  /** cutout centre */
  cy: number;
  cx: number;
}

export function sampleAugmentation(seed: number, epoch: number, index: number, cropPadding = CROP_PADDING, alternateFlip = false): SampleAugmentation {
  const rng = new Rng(hashSeed(seed, epoch, index, AUGMENT_TAG));
  const top = rng.int(2 * cropPadding + 1);
  const left = rng.int(2 * cropPadding + 1);
  const coin = rng.uniform() < 0.5; // drawn either way, so that the cutout draws stay the same
  const flip = alternateFlip ? alternatingFlip(seed, epoch, index) : coin;
  const cy = rng.int(IMAGE_SIZE);
  const cx = rng.int(IMAGE_SIZE);
  return { top, left, flip, cy, cx };
}

/** The alternating flip of sample `index` in `epoch`: a per-sample start (from seed and index), negated in odd epochs. */
export function alternatingFlip(seed: number, epoch: number, index: number): boolean {
  const start = new Rng(hashSeed(seed, index, FLIP_START_TAG)).uniform() < 0.5;
  return start !== (Math.abs(epoch) % 2 === 1);
}

/**
 * Writes the augmented, normalised CHW image of src (HWC bytes at srcAt) to out[outAt .. +3072).
 * Pixel (y, x) of the output reads source (y + dy, x' + dx) with x' = 31 - x when flipped; outside the image
 * it reads the zero padding (byte 0, normalised to -mean/std).
 */
export function augmentInto(out: Float32Array, outAt: number, src: Uint8Array, srcAt: number, a: SampleAugmentation, opts: AugmentOptions): void {
  const S = IMAGE_SIZE;
  const P = S * S;
  const lut = NORM_LUT;
  const pad = opts.cropPadding ?? CROP_PADDING;
  const dy = opts.crop ? a.top - pad : 0;
  const dx = opts.crop ? a.left - pad : 0;
  const flip = opts.flip && a.flip;
  // output columns whose source column (x + dx, or 31 - x + dx when flipped) lies inside the image
  const x0 = flip ? Math.max(0, dx) : Math.max(0, -dx);
  const x1 = flip ? Math.min(S, S + dx) : Math.min(S, S - dx);
  for (let y = 0; y < S; y++) {
    const o = outAt + y * S;
    const sy = y + dy;
    if (sy < 0 || sy >= S) {
      padRow(out, o, 0, S);
      continue;
    }
    padRow(out, o, 0, x0);
    padRow(out, o, x1, S);
    const row = srcAt + 3 * sy * S;
    for (let x = x0; x < x1; x++) {
      const s = row + 3 * (flip ? S - 1 - x + dx : x + dx);
      out[o + x] = lut[src[s]];
      out[o + P + x] = lut[256 + src[s + 1]];
      out[o + 2 * P + x] = lut[512 + src[s + 2]];
    }
  }
  const L = opts.cutout ?? 0;
  if (L > 0) cutoutInto(out, outAt, a.cy, a.cx, L);
}

/** Columns [from, to) of the row at `o` in all three planes get the zero padding's normalised value. */
function padRow(out: Float32Array, o: number, from: number, to: number): void {
  if (from >= to) return;
  const P = IMAGE_SIZE * IMAGE_SIZE;
  out.fill(NORM_LUT[0], o + from, o + to);
  out.fill(NORM_LUT[256], o + P + from, o + P + to);
  out.fill(NORM_LUT[512], o + 2 * P + from, o + 2 * P + to);
}

/** Zeroes rows [cy - L/2, cy + L/2) x columns [cx - L/2, cx + L/2), clipped, in all three planes. */
function cutoutInto(out: Float32Array, outAt: number, cy: number, cx: number, L: number): void {
  const S = IMAGE_SIZE;
  const h = Math.floor(L / 2);
  const y0 = Math.max(0, cy - h);
  const y1 = Math.min(S, cy + h);
  const x0 = Math.max(0, cx - h);
  const x1 = Math.min(S, cx + h);
  for (let c = 0; c < 3; c++) {
    for (let y = y0; y < y1; y++) out.fill(0, outAt + c * S * S + y * S + x0, outAt + c * S * S + y * S + x1);
  }
}

/**
 * The x of a batch: images[indices[k]] for each k, augmented (when `augment` enables anything) with the draws
 * of (seed, epoch, indices[k]), as [n,3,32,32] float32 NCHW.
 */
export function buildBatchX(images: Uint8Array, indices: ArrayLike<number>, epoch: number, seed: number, augment: AugmentOptions | null): Float32Array {
  const n = indices.length;
  const x = new Float32Array(n * IMAGE_BYTES);
  const active = augment !== null && (augment.crop || augment.flip || (augment.cutout ?? 0) > 0);
  for (let k = 0; k < n; k++) {
    const i = indices[k];
    if (active) augmentInto(x, k * IMAGE_BYTES, images, i * IMAGE_BYTES, sampleAugmentation(seed, epoch, i, augment.cropPadding, augment.alternateFlip), augment);
    else normalizeInto(x, k * IMAGE_BYTES, images, i * IMAGE_BYTES, IMAGE_SIZE * IMAGE_SIZE);
  }
  return x;
}
