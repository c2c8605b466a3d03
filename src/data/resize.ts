/**
 * Pillow's `Image.resize(size)` for RGB images, bit for bit: its default filter (BICUBIC, a = -0.5), its
 * antialiasing (the kernel is stretched by the scale when shrinking), its pixel-centre convention, its 22-bit
 * fixed-point coefficients, and its two passes (horizontal, rounded to 8 bits, then vertical).
 * The seed prepared prediction inputs with PIL's `resize((32, 32))`; libvips's resize uses another pixel-centre
 * convention when enlarging and a box pre-shrink when reducing, which moves values by up to half the range on
 * sharp edges. So images are resized here, in plain TypeScript, to give the model what it saw in training.
 *
 * Not a general resampler: RGB 8-bit, one filter. Cost: O(output pixels x kernel width); an 8000x6000 photo
 * to 32x32 takes one to three seconds here (each kernel spans about 1000 source pixels).
 * Reference: Pillow src/libImaging/Resample.c (precompute_coeffs, normalize_coeffs_8bpc, ImagingResampleInner).
 */

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);
const BICUBIC_SUPPORT = 2;

function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

interface Coeffs {
  ksize: number;
  /** per output index: first source index and count */
  bounds: Int32Array;
  /** fixed-point weights, ksize per output index */
  kk: Float64Array;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis. */
function coefficients(inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = BICUBIC_SUPPORT * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Float64Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      w[x] = bicubic((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x] / ww : w[x];
      kk[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

function clip8(ss: number): number {
  if (ss >= ONE * 256) return 255;
  if (ss <= 0) return 0;
  return Math.floor(ss / ONE);
}

/**
 * One pass along an axis. `src` has `lines` lines of `inLen` RGB pixels with strides (pixelStep, lineStep) in
 * pixels; the output is laid out the same way with `outLen` pixels per line.
 */
function pass(src: Uint8Array, dst: Uint8Array, lines: number, c: Coeffs, outLen: number, inPx: number, inLine: number, outPx: number, outLine: number, firstLine: number): void {
  for (let l = 0; l < lines; l++) {
    const inBase = (l + firstLine) * inLine;
    for (let o = 0; o < outLen; o++) {
      const xmin = c.bounds[2 * o];
      const n = c.bounds[2 * o + 1];
      const k = o * c.ksize;
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      for (let x = 0; x < n; x++) {
        const p = 3 * (inBase + (x + xmin) * inPx);
        const w = c.kk[k + x];
        s0 += src[p] * w;
        s1 += src[p + 1] * w;
        s2 += src[p + 2] * w;
      }
      const q = 3 * (l * outLine + o * outPx);
      dst[q] = clip8(s0);
      dst[q + 1] = clip8(s1);
      dst[q + 2] = clip8(s2);
    }
  }
}

/** Resizes RGB (HWC) bytes from width x height to outW x outH exactly as Pillow's BICUBIC resize. */
export function resizeBicubicPil(src: Uint8Array, width: number, height: number, outW: number, outH: number): Uint8Array {
  if (src.length !== width * height * 3) {
    throw new Error(`resize: expected ${width}x${height}x3 = ${width * height * 3} bytes, received ${src.length}`);
  }
  if (width === outW && height === outH) return src.slice();
  let img = src;
  let w = width;
  const cv = coefficients(height, outH);
  if (outW !== width) {
    // only the source rows the vertical pass will read, as Pillow does
    const first = cv.bounds[0];
    const last = cv.bounds[2 * outH - 2] + cv.bounds[2 * outH - 1];
    for (let i = 0; i < outH; i++) cv.bounds[2 * i] -= first;
    const tmp = new Uint8Array(outW * (last - first) * 3);
    pass(img, tmp, last - first, coefficients(width, outW), outW, 1, width, 1, outW, first);
    img = tmp;
    w = outW;
  }
  if (outH !== height) {
    const out = new Uint8Array(w * outH * 3);
    // columns are the lines: a column's pixels are `w` apart, neighbouring columns 1 apart
    pass(img, out, w, cv, outH, w, 1, w, 1, 0);
    img = out;
  }
  return img;
}
