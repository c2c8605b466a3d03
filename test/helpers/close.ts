/**
 * Test helpers: numeric comparison with a report of the first mismatches and the max difference
 * (`expectClose(actual, expected, {atol, rtol})`).
 */
import assert from 'node:assert/strict';

export interface Tolerance {
  atol?: number;
  rtol?: number;
}

type Num = ArrayLike<number>;

export function maxAbsDiff(a: Num, b: Num): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** max |a-b| / max(|b|) over the whole array: a scale-aware error for tensors with values near zero */
export function relErrorToMax(a: Num, b: Num): number {
  let ref = 0;
  for (let i = 0; i < b.length; i++) ref = Math.max(ref, Math.abs(b[i]));
  return maxAbsDiff(a, b) / (ref || 1);
}

/** Asserts |actual - expected| <= atol + rtol * |expected| elementwise (numpy's allclose rule). */
export function expectClose(actual: Num, expected: Num, tol: Tolerance = {}, what = 'values'): void {
  const atol = tol.atol ?? 1e-6;
  const rtol = tol.rtol ?? 1e-5;
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} != expected ${expected.length}`);
  const bad: string[] = [];
  let nBad = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const ok = Number.isNaN(e) ? Number.isNaN(a) : Math.abs(a - e) <= atol + rtol * Math.abs(e);
    if (!ok) {
      nBad++;
      if (bad.length < 5) bad.push(`[${i}] ${a} vs ${e}`);
    }
  }
  if (nBad > 0) {
    assert.fail(
      `${what}: ${nBad}/${actual.length} elements differ beyond atol=${atol} rtol=${rtol}; ` +
        `max abs diff ${maxAbsDiff(actual, expected).toExponential(3)}; first: ${bad.join(', ')}`,
    );
  }
}
