/**
 * The seed's ToTensor + Normalize: uint8 RGB (HWC) to float32 planes (CHW), x/255 then (x - mean) / std per
 * channel, with the seed's CIFAR-10 statistics. Each step is rounded to float32 as PyTorch computes it in
 * float32, so values match torchvision's transforms bit for bit; a 3x256 lookup table holds every result.
 *
 * Not augmentation (augment.ts) and not resizing (decode.ts).
 * Reference: torchvision.transforms.ToTensor / Normalize; mean and std from the seed's training script.
 */

export const CIFAR_MEAN: readonly [number, number, number] = [0.4914, 0.4822, 0.4465];
export const CIFAR_STD: readonly [number, number, number] = [0.2023, 0.1994, 0.201];

export const IMAGE_SIZE = 32;
/** bytes of one 32x32 RGB image */
export const IMAGE_BYTES = IMAGE_SIZE * IMAGE_SIZE * 3;

function buildLut(): Float32Array {
  const f = Math.fround;
  const lut = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = f(f(f(v / 255) - f(CIFAR_MEAN[c])) / f(CIFAR_STD[c]));
  }
  return lut;
}

/** NORM_LUT[c * 256 + v] = normalised value of byte v in channel c (c = 0 R, 1 G, 2 B). */
export const NORM_LUT: Float32Array = buildLut();

/**
 * Writes one image, HWC bytes at src[srcAt ..], as normalised CHW floats at out[outAt ..].
 * `pixels` is H*W (1024 for CIFAR).
 */
export function normalizeInto(out: Float32Array, outAt: number, src: Uint8Array, srcAt: number, pixels: number): void {
  const lut = NORM_LUT;
  for (let p = 0; p < pixels; p++) {
    const s = srcAt + 3 * p;
    out[outAt + p] = lut[src[s]];
    out[outAt + pixels + p] = lut[256 + src[s + 1]];
    out[outAt + 2 * pixels + p] = lut[512 + src[s + 2]];
  }
}

/**
 * Normalises one RGB image given as HWC bytes (length 3*H*W; 3072 for 32x32) into CHW float32 planes
 * (the [3,H,W] slice of a model input).
 */
export function normalizeImage(rgbHWC: Uint8Array): Float32Array {
  if (rgbHWC.length === 0 || rgbHWC.length % 3 !== 0) {
    throw new Error(`normalizeImage: expected HWC RGB bytes (a multiple of 3, e.g. ${IMAGE_BYTES}), received ${rgbHWC.length} bytes`);
  }
  const pixels = rgbHWC.length / 3;
  const out = new Float32Array(rgbHWC.length);
  normalizeInto(out, 0, rgbHWC, 0, pixels);
  return out;
}
