/**
 * IEEE 754 binary16 ("half", safetensors' F16, PyTorch's torch.float16) to and from float32, by bit manipulation:
 * JavaScript has no Float16Array before Node 24.
 *
 * binary16: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits. Normal numbers 2^-14 .. 65504, subnormals down to
 * 2^-24, exponent 31 for infinity (mantissa 0) and NaN (mantissa non-zero).
 * float32 → float16 rounds to nearest, ties to even (IEEE's default, what numpy's astype(float16) and PyTorch's
 * .half() do): beyond 65504 + 16 a value overflows to infinity, below 2^-25 it underflows to a signed zero, and a NaN
 * stays a NaN (quiet, sign and the top of its payload kept). float16 → float32 is exact.
 *
 * What it is not: bfloat16 (8 exponent bits; the native backend's bf16 is a different format).
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The binary16 bit pattern (0..0xFFFF) nearest to x (rounded to float32 first, as a Float32Array holds it). */
export function float32ToFloat16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) {
    // infinity keeps mantissa 0; a NaN keeps its top 9 payload bits and gets the quiet bit, so it cannot become inf
    return mant === 0 ? sign | 0x7c00 : sign | 0x7c00 | 0x200 | (mant >>> 13);
  }
  const e = exp - 127 + 15; // the exponent as binary16 would store it
  if (e >= 0x1f) return sign | 0x7c00; // 2^16 and above: too large even before rounding
  if (e >= 1) {
    // normal: keep the top 10 mantissa bits, round on the 13 dropped; a carry out of the mantissa bumps the
    // exponent, which is right (1.1111111111|1... rounds to 2.0), and 0x7bff + 1 = 0x7c00 is infinity
    const half = sign | (e << 10) | (mant >>> 13);
    return half + roundUp(mant & 0x1fff, 13, half);
  }
  // subnormal (or zero): the value in units of 2^-24 is m · 2^(exp − 126), m the 24-bit significand
  const shift = 126 - exp; // 14 at e = 0, more below
  if (shift > 25) return sign; // below 2^-26: zero (up to 2^-25, a tie that goes to the even 0, the rounding below decides)
  const m = exp === 0 ? mant : mant | 0x800000; // float32 subnormals (exp 0) are far below 2^-25 anyway
  const q = m >>> shift;
  // a carry into bit 10 yields 0x0400, the smallest normal, which is right
  return sign | (q + roundUp(m & ((1 << shift) - 1), shift, q));
}

/** 1 if the dropped bits `rest` (`n` of them) round the kept value `kept` up: above half, or exactly half and odd. */
function roundUp(rest: number, n: number, kept: number): number {
  const halfway = 1 << (n - 1);
  return rest > halfway || (rest === halfway && (kept & 1) === 1) ? 1 : 0;
}

/** The value of a binary16 bit pattern, exactly (every binary16 value is a float32 value). */
export function float16BitsToFloat32(h: number): number {
  const sign = (h & 0x8000) << 16;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return (sign ? -1 : 1) * m * 2 ** -24; // zero and subnormals
  if (e === 0x1f) u32[0] = sign | 0x7f800000 | (m << 13); // infinity, NaN with its payload
  else u32[0] = sign | ((e - 15 + 127) << 23) | (m << 13);
  return f32[0];
}

/** float32 (or float64) values to their binary16 bit patterns. */
export function toFloat16Array(src: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = float32ToFloat16Bits(src[i]);
  return out;
}

/** binary16 bit patterns to float32 values. */
export function fromFloat16Array(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = float16BitsToFloat32(src[i]);
  return out;
}
