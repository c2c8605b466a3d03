/**
 * Test helpers: gradient checks by central differences, for float64 computations.
 *
 * What it is: `numericalGrad` (∂f/∂x_i ≈ (f(x + h·e_i) − f(x − h·e_i)) / 2h for a scalar f) and
 * `checkGradients`, which reduces a tensor-valued function to a scalar with a fixed random projection
 * Σ r·f(x) and compares the numerical derivative with the analytic gradient (the backward pass fed dy = r).
 * What it is not: usable in float32 (the cancellation in f(x+h) − f(x−h) needs float64 and h ≈ 1e-6).
 * References: the gradient checks of tinygrad's and PyTorch's op tests (torch.autograd.gradcheck uses the
 * same central differences).
 */
import assert from 'node:assert/strict';
import { Rng } from '../../src/util/rng';
import { expectClose } from './close';

/** Central-difference gradient of a scalar function; perturbs `x` in place and restores every element. */
export function numericalGrad(f: (x: Float64Array) => number, x: Float64Array, h = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const saved = x[i];
    x[i] = saved + h;
    const fPlus = f(x);
    x[i] = saved - h;
    const fMinus = f(x);
    x[i] = saved;
    g[i] = (fPlus - fMinus) / (2 * h);
  }
  return g;
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, `dot: lengths ${a.length} and ${b.length} differ`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * Asserts that an analytic gradient matches a numerical one: elementwise |a − n| <= rtol·(|n| + max|n|).
 * The max term makes the check scale-aware for elements near zero; an all-zero numerical gradient fails,
 * because such a check would prove nothing.
 */
export function expectGradClose(analytic: ArrayLike<number>, numeric: ArrayLike<number>, what: string, rtol = 1e-6): void {
  let scale = 0;
  for (let i = 0; i < numeric.length; i++) scale = Math.max(scale, Math.abs(numeric[i]));
  assert.ok(scale > 0, `${what}: the numerical gradient is all zeros; the check would prove nothing`);
  expectClose(analytic, numeric, { atol: rtol * scale, rtol }, what);
}

export interface GradCheckCase<I extends Record<string, Float64Array>> {
  /** names the case in failure messages */
  what: string;
  /** the inputs; those named in `wrt` are perturbed (restored afterwards) */
  inputs: I;
  /** names of the inputs whose gradients are checked */
  wrt: readonly (keyof I & string)[];
  /** the function under test: inputs -> output tensor (flat) */
  forward: (inputs: I) => ArrayLike<number>;
  /** the analytic gradients of Σ dy·forward(inputs), by input name */
  backward: (inputs: I, dy: Float64Array) => Partial<Record<keyof I & string, ArrayLike<number>>>;
  seed?: number;
  h?: number;
  rtol?: number;
}

/** Compares the analytic gradient of Σ r·forward(x) (r uniform in [-1,1), seeded) with central differences. */
export function checkGradients<I extends Record<string, Float64Array>>(c: GradCheckCase<I>): void {
  const rng = new Rng(c.seed ?? 1234);
  const y0 = c.forward(c.inputs);
  const r = new Float64Array(y0.length);
  for (let i = 0; i < r.length; i++) r[i] = rng.uniformRange(-1, 1);
  const analytic = c.backward(c.inputs, r);
  for (const name of c.wrt) {
    const a = analytic[name];
    assert.ok(a !== undefined, `${c.what}: backward returned no gradient for ${name}`);
    const x = c.inputs[name];
    assert.equal(a.length, x.length, `${c.what}: gradient of ${name} has ${a.length} elements, input has ${x.length}`);
    const numeric = numericalGrad(() => dot(r, c.forward(c.inputs)), x, c.h);
    expectGradClose(a, numeric, `${c.what}: d/d${name}`, c.rtol);
  }
}
