/**
 * Gradient checks of every backward kernel of the reference backend against central differences in float64
 * (test/helpers/gradcheck.ts): the analytic gradient of Σ r·f(x) for a random r must match the numerical one.
 * Not a check of forward values (reference-forward.test.ts does that by hand).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BatchNormParams, Conv2dParams, Pool2dParams, Shape } from '../../src/backend/backend';
import { convOutputShape, poolOutputShape } from '../../src/backend/backend';
import { Rng } from '../../src/util/rng';
import { checkGradients, numericalGrad } from '../helpers/gradcheck';
import { expectClose } from '../helpers/close';
import { B, take, uniform, withStorages } from './reference-util';

describe('numericalGrad (the helper itself)', () => {
  test('matches a known derivative and restores x', () => {
    // f(x) = x0²·x1 + sin(x2): ∇f = [2·x0·x1, x0², cos(x2)]
    const x = Float64Array.of(0.7, -1.3, 0.4);
    const g = numericalGrad((v) => v[0] * v[0] * v[1] + Math.sin(v[2]), x);
    expectClose(g, [2 * 0.7 * -1.3, 0.49, Math.cos(0.4)], { atol: 1e-8, rtol: 0 });
    assert.deepEqual(Array.from(x), [0.7, -1.3, 0.4]);
  });
  test('checkGradients rejects a wrong backward', () => {
    const inputs = { x: Float64Array.of(1, 2, 3) };
    assert.throws(() =>
      checkGradients({
        what: 'square', inputs, wrt: ['x'],
        forward: (i) => i.x.map((v) => v * v),
        backward: (i, dy) => ({ x: i.x.map((v, k) => v * dy[k]) }), // missing the factor 2
      }),
    );
  });
});

function convCase(xShape: Shape, wShape: Shape, p: Conv2dParams, bias: boolean, seed: number): void {
  const rng = new Rng(seed);
  const K = wShape[0];
  const yShape = convOutputShape(xShape, wShape, p);
  const inputs = { x: uniform(rng, xShape), w: uniform(rng, wShape), b: uniform(rng, [K]) };
  checkGradients({
    what: `conv2d x[${xShape}] w[${wShape}] stride ${p.stride} pad ${p.padding} bias ${bias}`,
    inputs,
    wrt: bias ? ['x', 'w', 'b'] : ['x', 'w'],
    forward: (i) =>
      withStorages((mk) =>
        take(B.conv2d(mk(i.x, xShape), xShape, mk(i.w, wShape), wShape, bias ? mk(i.b, [K]) : null, p), yShape)),
    backward: (i, dy) =>
      withStorages((mk) => {
        const dys = mk(dy, yShape);
        const x = take(B.conv2dBackwardData(dys, mk(i.w, wShape), xShape, wShape, p), xShape);
        const { dw, db } = B.conv2dBackwardWeights(dys, mk(i.x, xShape), xShape, wShape, p, bias);
        assert.equal(db === null, !bias, 'conv2dBackwardWeights: db must be present exactly when withBias');
        return { x, w: take(dw, wShape), ...(db ? { b: take(db, [K]) } : {}) };
      }),
  });
}

describe('conv2d backward (data, weights, bias)', () => {
  const P = (s: [number, number], q: [number, number]): Conv2dParams => ({ stride: s, padding: q });
  test('3x3, stride 1, padding 0, batch 1, bias', () => convCase([1, 1, 5, 7], [1, 1, 3, 3], P([1, 1], [0, 0]), true, 1));
  test('3x3, stride 2, padding 1, batch 3, bias', () => convCase([3, 2, 5, 7], [4, 2, 3, 3], P([2, 2], [1, 1]), true, 2));
  test('1x1, stride 2, padding 0, no bias (the downsample shortcut)', () =>
    convCase([3, 3, 6, 6], [2, 3, 1, 1], P([2, 2], [0, 0]), false, 3));
  test('3x3, stride 1, padding 2, no bias', () => convCase([1, 3, 5, 7], [2, 3, 3, 3], P([1, 1], [2, 2]), false, 4));
  test('5x7 kernel, unequal strides and paddings', () => convCase([2, 2, 7, 9], [3, 2, 5, 7], P([2, 1], [2, 1]), true, 5));
  test('stride 2 with a window that does not reach the last row', () =>
    convCase([3, 1, 6, 6], [2, 1, 3, 3], P([2, 2], [0, 0]), true, 6));
});

function bnCase(shape: Shape, training: boolean, relu: boolean, seed: number): void {
  const rng = new Rng(seed);
  const C = shape[1];
  const p: BatchNormParams = { eps: 1e-5, momentum: 0.1, training, relu };
  const inputs = {
    x: uniform(rng, shape, -2, 2),
    gamma: uniform(rng, [C], 0.5, 1.5),
    beta: uniform(rng, [C], -0.5, 0.5),
  };
  const rm = uniform(rng, [C], -0.3, 0.3);
  const rv = uniform(rng, [C], 0.5, 1.5);
  const run = (i: typeof inputs, withRelu: boolean) =>
    withStorages((mk) => {
      const out = B.batchNorm2d(mk(i.x, shape), shape, mk(i.gamma, [C]), mk(i.beta, [C]), mk(rm, [C]), mk(rv, [C]), { ...p, relu: withRelu });
      for (const s of out.saved.storages) B.dispose(s);
      return take(out.y, shape);
    });
  if (relu) {
    // keep the inputs away from the ReLU's kink, and make sure both sides of it are exercised
    const z = run(inputs, false);
    assert.ok(z.every((v) => Math.abs(v) > 1e-3), 'test input too close to the ReLU kink; pick another seed');
    assert.ok(z.some((v) => v < 0) && z.some((v) => v > 0), 'test input must have both signs before the ReLU');
  }
  checkGradients({
    what: `batchNorm2d [${shape}] training ${training} relu ${relu}`,
    inputs,
    wrt: ['x', 'gamma', 'beta'],
    forward: (i) => run(i, relu),
    backward: (i, dy) =>
      withStorages((mk) => {
        const xs = mk(i.x, shape);
        const g = mk(i.gamma, [C]);
        const b = mk(i.beta, [C]);
        const fwd = B.batchNorm2d(xs, shape, g, b, mk(rm, [C]), mk(rv, [C]), p);
        B.dispose(fwd.y);
        const grads = B.batchNorm2dBackward(mk(dy, shape), xs, shape, g, b, fwd.saved, p);
        for (const s of fwd.saved.storages) B.dispose(s);
        return { x: take(grads.dx, shape), gamma: take(grads.dgamma, [C]), beta: take(grads.dbeta, [C]) };
      }),
  });
}

describe('batchNorm2d backward', () => {
  test('training', () => bnCase([3, 2, 3, 4], true, false, 11));
  test('training with fused ReLU', () => bnCase([4, 3, 2, 3], true, true, 12));
  test('training, one pixel per image (N·H·W = N)', () => bnCase([5, 2, 1, 1], true, false, 13));
  test('eval (running statistics are constants)', () => bnCase([2, 3, 3, 3], false, false, 14));
  test('eval with fused ReLU', () => bnCase([2, 3, 3, 3], false, true, 15));
});

/** Values uniform in ±[0.1, 1): far from the ReLU kink at 0 */
function awayFromZero(rng: Rng, shape: Shape): Float64Array {
  return uniform(rng, shape, 0.1, 1).map((v) => (rng.uniform() < 0.5 ? -v : v));
}

describe('elementwise backward', () => {
  const shape = [2, 3, 2, 2];
  test('relu', () => {
    const inputs = { x: awayFromZero(new Rng(21), shape) };
    checkGradients({
      what: 'relu', inputs, wrt: ['x'],
      forward: (i) => withStorages((mk) => take(B.relu(mk(i.x, shape), shape), shape)),
      backward: (i, dy) =>
        withStorages((mk) => {
          const y = B.relu(mk(i.x, shape), shape);
          const dx = B.reluBackward(mk(dy, shape), y, shape);
          B.dispose(y);
          return { x: take(dx, shape) };
        }),
    });
  });
  test('addRelu, both inputs', () => {
    const rng = new Rng(22);
    const a = uniform(rng, shape);
    const sum = awayFromZero(rng, shape);
    const inputs = { a, b: sum.map((v, k) => v - a[k]) };
    checkGradients({
      what: 'addRelu', inputs, wrt: ['a', 'b'],
      forward: (i) => withStorages((mk) => take(B.addRelu(mk(i.a, shape), mk(i.b, shape), shape), shape)),
      backward: (i, dy) =>
        withStorages((mk) => {
          const y = B.addRelu(mk(i.a, shape), mk(i.b, shape), shape);
          const d = take(B.reluBackward(mk(dy, shape), y, shape), shape);
          B.dispose(y);
          return { a: d, b: d };
        }),
    });
  });
  test('add, scale and reshape (identity-like gradients)', () => {
    const rng = new Rng(23);
    const inputs = { a: uniform(rng, shape), b: uniform(rng, shape) };
    const flat = [24];
    checkGradients({
      what: 'reshape(scale(a + b, -1.5))', inputs, wrt: ['a', 'b'],
      forward: (i) =>
        withStorages((mk) => {
          const s = B.add(mk(i.a, shape), mk(i.b, shape), shape);
          const t = B.scale(s, -1.5, shape);
          B.dispose(s);
          const r = B.reshape(t, shape, flat);
          B.dispose(t);
          return take(r, flat);
        }),
      backward: (_i, dy) =>
        withStorages((mk) => {
          const back = B.reshape(mk(dy, flat), flat, shape);
          const g = take(B.scale(back, -1.5, shape), shape);
          B.dispose(back);
          return { a: g, b: g };
        }),
    });
  });
});

function poolCase(xShape: Shape, p: Pool2dParams, seed: number): void {
  const yShape = poolOutputShape(xShape, p);
  checkGradients({
    what: `avgPool2d x[${xShape}] kernel ${p.kernel} stride ${p.stride} pad ${p.padding}`,
    inputs: { x: uniform(new Rng(seed), xShape) },
    wrt: ['x'],
    forward: (i) => withStorages((mk) => take(B.avgPool2d(mk(i.x, xShape), xShape, p), yShape)),
    backward: (_i, dy) => withStorages((mk) => ({ x: take(B.avgPool2dBackward(mk(dy, yShape), xShape, p), xShape) })),
  });
}

describe('avgPool2d backward', () => {
  test('kernel 2, stride 2', () => poolCase([2, 3, 4, 6], { kernel: [2, 2], stride: [2, 2], padding: [0, 0] }, 31));
  test('kernel 4, stride 4 (the ResNet head)', () => poolCase([1, 2, 8, 8], { kernel: [4, 4], stride: [4, 4], padding: [0, 0] }, 32));
  test('kernel 3, stride 2, padding 1 (padding counted)', () =>
    poolCase([2, 2, 5, 7], { kernel: [3, 3], stride: [2, 2], padding: [1, 1] }, 33));
  test('kernel 2x4, stride 1x2, padding 1x2 (overlapping windows)', () =>
    poolCase([1, 2, 5, 6], { kernel: [2, 4], stride: [1, 2], padding: [1, 2] }, 34));
});

function linearCase(N: number, I: number, O: number, bias: boolean, seed: number): void {
  const rng = new Rng(seed);
  const inputs = { x: uniform(rng, [N, I]), w: uniform(rng, [O, I]), b: uniform(rng, [O]) };
  checkGradients({
    what: `linear [${N},${I}]x[${O},${I}] bias ${bias}`,
    inputs,
    wrt: bias ? ['x', 'w', 'b'] : ['x', 'w'],
    forward: (i) =>
      withStorages((mk) => take(B.linear(mk(i.x, [N, I]), [N, I], mk(i.w, [O, I]), [O, I], bias ? mk(i.b, [O]) : null), [N, O])),
    backward: (i, dy) =>
      withStorages((mk) => {
        const g = B.linearBackward(mk(dy, [N, O]), mk(i.x, [N, I]), [N, I], mk(i.w, [O, I]), [O, I], bias);
        assert.equal(g.db === null, !bias, 'linearBackward: db must be present exactly when withBias');
        return { x: take(g.dx, [N, I]), w: take(g.dw, [O, I]), ...(g.db ? { b: take(g.db, [O]) } : {}) };
      }),
  });
}

describe('linear backward', () => {
  test('with bias', () => linearCase(3, 5, 4, true, 41));
  test('without bias, batch 1', () => linearCase(1, 6, 2, false, 42));
});

describe('softmax family backward', () => {
  const shape = [3, 5];
  test('softmax', () => {
    checkGradients({
      what: 'softmax', inputs: { x: uniform(new Rng(51), shape, -3, 3) }, wrt: ['x'],
      forward: (i) => withStorages((mk) => take(B.softmax(mk(i.x, shape), shape), shape)),
      backward: (i, dy) =>
        withStorages((mk) => {
          const y = B.softmax(mk(i.x, shape), shape);
          const dx = B.softmaxBackward(mk(dy, shape), y, shape);
          B.dispose(y);
          return { x: take(dx, shape) };
        }),
    });
  });
  test('logSoftmax', () => {
    checkGradients({
      what: 'logSoftmax', inputs: { x: uniform(new Rng(52), shape, -3, 3) }, wrt: ['x'],
      forward: (i) => withStorages((mk) => take(B.logSoftmax(mk(i.x, shape), shape), shape)),
      backward: (i, dy) =>
        withStorages((mk) => {
          const y = B.logSoftmax(mk(i.x, shape), shape);
          const dx = B.logSoftmaxBackward(mk(dy, shape), y, shape);
          B.dispose(y);
          return { x: take(dx, shape) };
        }),
    });
  });
});

function ceCase(eps: number, gradOutput: number, seed: number): void {
  const shape = [4, 5];
  const targets = Int32Array.of(0, 3, 4, 3);
  checkGradients({
    what: `crossEntropy ε=${eps} gradOutput=${gradOutput}`,
    inputs: { x: uniform(new Rng(seed), shape, -3, 3) },
    wrt: ['x'],
    // the scalar output scaled by gradOutput, so that Σ r·f = r·gradOutput·loss and backward sees r·gradOutput
    forward: (i) =>
      withStorages((mk) => {
        const { loss, probs } = B.crossEntropy(mk(i.x, shape), shape, targets, eps);
        B.dispose(probs);
        return [gradOutput * loss];
      }),
    backward: (i, dy) =>
      withStorages((mk) => {
        const { probs } = B.crossEntropy(mk(i.x, shape), shape, targets, eps);
        const dx = B.crossEntropyBackward(probs, shape, targets, eps, gradOutput * dy[0]);
        B.dispose(probs);
        return { x: take(dx, shape) };
      }),
  });
}

describe('crossEntropy backward', () => {
  test('no smoothing, gradOutput 1', () => ceCase(0, 1, 61));
  test('no smoothing, gradOutput 2.5', () => ceCase(0, 2.5, 62));
  test('label smoothing 0.1, gradOutput -0.7', () => ceCase(0.1, -0.7, 63));
});
