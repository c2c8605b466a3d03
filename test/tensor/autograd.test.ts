/**
 * Autograd-level gradient checks (float64, reference backend): every differentiable op through Tensor/backward(),
 * and composite graphs with fan-out and residual joins (a BasicBlock with an identity shortcut, and one with a
 * strided 1x1 projection) — the engine's routing of gradients, not only the kernels, is what is checked here.
 * Plus the memory rules: tidy() frees intermediates, keep() and returned tensors survive.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { backendByName } from '../../src/backend';
import {
  Parameter, Tensor, add, addRelu, avgPool2d, batchNorm2d, conv2d, crossEntropy, flatten, linear, logSoftmax,
  noGrad, relu, reshape, scale, softmax, sum, tidy,
} from '../../src/tensor';
import { Rng } from '../../src/util/rng';
import { expectGradClose, numericalGrad } from '../helpers/gradcheck';

const be = backendByName('reference');

interface Input {
  shape: number[];
  data: Float64Array;
}

function rand(shape: number[], rng: Rng, scale = 1, offset = 0): Input {
  const n = shape.reduce((a, b) => a * b, 1);
  return { shape, data: Float64Array.from({ length: n }, () => offset + scale * (rng.uniform() * 2 - 1)) };
}

/** Compares backward() of `f(params) -> scalar` with central differences for every input. */
function checkGraph(inputs: Input[], f: (ps: Parameter[]) => Tensor, rtol = 1e-6): void {
  const analytic = tidy(() => {
    const ps = inputs.map((i) => Parameter.fromArray(i.data, i.shape, be));
    f(ps).backward();
    const grads = ps.map((p) => {
      assert.ok(p.grad, 'an input received no gradient');
      return p.grad.toArray();
    });
    ps.forEach((p) => { p.grad?.dispose(); p.dispose(); });
    return grads;
  });
  inputs.forEach((inp, k) => {
    const numeric = numericalGrad((x) => noGrad(() => tidy(() => {
      const ps = inputs.map((i, j) => Parameter.fromArray(j === k ? x : i.data, i.shape, be));
      const v = f(ps).item();
      ps.forEach((p) => p.dispose());
      return v;
    })), Float64Array.from(inp.data));
    expectGradClose(analytic[k], numeric, `input ${k}`, rtol);
  });
}

/** A fixed random projection to a scalar: Σ r·t, via ops only (linear with a constant weight row). */
function project(t: Tensor, seed: number): Tensor {
  const flat = reshape(t, [1, t.numel]);
  const r = Tensor.fromArray(rand([1, t.numel], new Rng(seed)).data, [1, t.numel], be);
  return sum(linear(flat, r, null));
}

function bn(x: Tensor, C: number, gamma: Tensor, beta: Tensor, training: boolean, withRelu: boolean): Tensor {
  const rm = Tensor.fromArray(new Float64Array(C).fill(0.1), [C], be);
  const rv = Tensor.fromArray(new Float64Array(C).fill(1.5), [C], be);
  return batchNorm2d(x, gamma, beta, rm, rv, { training, relu: withRelu });
}

describe('autograd: single ops (float64, central differences)', () => {
  const rng = new Rng(7);
  test('conv2d stride 2 padding 1 with bias', () => {
    checkGraph([rand([2, 3, 5, 6], rng), rand([4, 3, 3, 3], rng), rand([4], rng)], ([x, w, b]) =>
      project(conv2d(x, w, b, { stride: 2, padding: 1 }), 1));
  });
  test('batchNorm2d training with fused relu, and eval', () => {
    checkGraph([rand([3, 2, 3, 3], rng), rand([2], rng, 0.3, 1), rand([2], rng, 0.2)], ([x, g, b]) =>
      project(bn(x, 2, g, b, true, true), 2));
    checkGraph([rand([3, 2, 3, 3], rng), rand([2], rng, 0.3, 1), rand([2], rng, 0.2)], ([x, g, b]) =>
      project(bn(x, 2, g, b, false, false), 3));
  });
  test('relu, add, addRelu, scale', () => {
    checkGraph([rand([2, 3, 4, 4], rng)], ([x]) => project(relu(x), 4));
    checkGraph([rand([2, 3], rng), rand([2, 3], rng)], ([a, b]) => project(add(a, b), 5));
    checkGraph([rand([2, 3, 2, 2], rng), rand([2, 3, 2, 2], rng)], ([a, b]) => project(addRelu(a, b), 6));
    checkGraph([rand([5], rng)], ([a]) => project(scale(a, -2.5), 7));
  });
  test('avgPool2d, flatten, linear', () => {
    checkGraph([rand([2, 2, 4, 4], rng)], ([x]) => project(avgPool2d(x, 2), 8));
    checkGraph([rand([2, 2, 2, 2], rng), rand([3, 8], rng), rand([3], rng)], ([x, w, b]) =>
      project(linear(flatten(x), w, b), 9));
  });
  test('softmax, logSoftmax, crossEntropy with label smoothing', () => {
    checkGraph([rand([3, 4], rng, 2)], ([x]) => project(softmax(x), 10));
    checkGraph([rand([3, 4], rng, 2)], ([x]) => project(logSoftmax(x), 11));
    checkGraph([rand([3, 4], rng, 2)], ([x]) => crossEntropy(x, [0, 3, 1], { labelSmoothing: 0.1 }));
  });
});

describe('autograd: composite graphs', () => {
  const rng = new Rng(11);
  test('a tensor used twice (fan-out) gets the sum of both paths', () => {
    checkGraph([rand([2, 3], rng)], ([a]) => project(add(relu(a), scale(a, 3)), 12));
    checkGraph([rand([2, 3], rng)], ([a]) => project(add(a, a), 13));
  });
  test('BasicBlock with identity shortcut: addRelu(bn(conv(bnrelu(conv(x)))), x)', () => {
    const C = 3;
    checkGraph(
      [rand([2, C, 4, 4], rng), rand([C, C, 3, 3], rng, 0.5), rand([C], rng, 0.2, 1), rand([C], rng, 0.1),
        rand([C, C, 3, 3], rng, 0.5), rand([C], rng, 0.2, 1), rand([C], rng, 0.1)],
      ([x, w1, g1, b1, w2, g2, b2]) => {
        const h = bn(conv2d(x, w1, null, { padding: 1 }), C, g1, b1, true, true);
        const left = bn(conv2d(h, w2, null, { padding: 1 }), C, g2, b2, true, false);
        return project(addRelu(left, x), 14);
      },
    );
  });
  test('two stacked identity blocks then pooling and cross-entropy', () => {
    const C = 2;
    checkGraph(
      [rand([2, C, 4, 4], rng), rand([C, C, 3, 3], rng, 0.5), rand([C, C, 3, 3], rng, 0.5), rand([3, C], rng)],
      ([x, w1, w2, fc]) => {
        const one = Tensor.fromArray(new Float64Array(C).fill(1), [C], be);
        const zero = Tensor.fromArray(new Float64Array(C), [C], be);
        const block = (t: Tensor, w: Tensor) => addRelu(bn(conv2d(t, w, null, { padding: 1 }), C, one, zero, true, false), t);
        const y = block(block(x, w1), w2);
        return crossEntropy(linear(flatten(avgPool2d(y, 4)), fc, null), [2, 0]);
      },
    );
  });
});

describe('memory rules', () => {
  test('tidy disposes intermediates, keeps the result and kept tensors', () => {
    let inner: Tensor | null = null;
    const out = tidy(() => {
      const a = Tensor.fromArray(new Float64Array([1, -2, 3]), [3], be);
      inner = relu(a);
      return scale(inner, 2);
    });
    assert.equal(inner!.isDisposed, true);
    assert.equal(out.isDisposed, false);
    assert.deepEqual(Array.from(out.toArray()), [2, 0, 6]);
    out.dispose();
    assert.throws(() => out.toArray(), /used after dispose/);
  });
  test('backward frees saved state: a second backward through the same graph is refused', () => {
    tidy(() => {
      const p = Parameter.fromArray(new Float64Array([1, 2]), [1, 2], be);
      const loss = crossEntropy(p, [1]);
      loss.backward();
      assert.throws(() => loss.backward(), /already freed/);
      p.grad?.dispose();
      p.dispose();
    });
  });
  test('gradients accumulate across backward calls until zeroed', () => {
    const p = Parameter.fromArray(new Float64Array([0.5, -1]), [1, 2], be);
    tidy(() => crossEntropy(p, [0]).backward());
    const once = Array.from(p.grad!.toArray());
    tidy(() => crossEntropy(p, [0]).backward());
    assert.deepEqual(Array.from(p.grad!.toArray()), once.map((v) => 2 * v));
    p.grad!.dispose();
    p.dispose();
  });
});
