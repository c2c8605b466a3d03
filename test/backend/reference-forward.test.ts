/**
 * Forward values of the reference backend against small cases worked out by hand (the arithmetic is in the
 * comments), plus the numerical-stability and in-place-update contracts. Not gradient checks
 * (reference-gradcheck.test.ts) and not error messages (reference-errors.test.ts).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BatchNormParams, SgdParams } from '../../src/backend/backend';
import { Rng } from '../../src/util/rng';
import { expectClose } from '../helpers/close';
import { B, take, uniform } from './reference-util';
import { createReferenceBackend } from '../../src/backend/reference';

const f64 = (...v: number[]) => Float64Array.from(v);
/** x[h][w] = 4h + w + 1: the 4x4 image 1..16 */
const X16 = f64(...Array.from({ length: 16 }, (_, i) => i + 1));

describe('memory', () => {
  test('round trip keeps dtype and values, and copies', () => {
    const src = Float32Array.of(1.5, -2, 3);
    const s = B.fromArray(src, [3]);
    src[0] = 99; // the storage owns a copy
    assert.equal(s.dtype, 'float32');
    assert.equal(s.numel, 3);
    const out = B.toArray(s, [3]);
    assert.ok(out instanceof Float32Array);
    assert.deepEqual(Array.from(out), [1.5, -2, 3]);
    out[1] = 7; // toArray returns a copy
    assert.deepEqual(Array.from(take(s, [3])), [1.5, -2, 3]);
    const z = B.zeros([2, 2], 'float64');
    assert.equal(z.dtype, 'float64');
    assert.ok(B.toArray(z, [2, 2]) instanceof Float64Array);
    assert.deepEqual(Array.from(take(z, [2, 2])), [0, 0, 0, 0]);
  });
  test('reshape keeps row-major order; sum, add, addInPlace, scale', () => {
    const a = B.fromArray(f64(1, 2, 3, 4, 5, 6), [2, 3]);
    const r = B.reshape(a, [2, 3], [3, 2]);
    assert.deepEqual(Array.from(take(r, [3, 2])), [1, 2, 3, 4, 5, 6]);
    assert.equal(B.sum(a, [2, 3]), 21);
    const b = B.fromArray(f64(10, 20, 30, 40, 50, 60), [2, 3]);
    assert.deepEqual(Array.from(take(B.add(a, b, [2, 3]), [2, 3])), [11, 22, 33, 44, 55, 66]);
    assert.deepEqual(Array.from(take(B.scale(a, -0.5, [2, 3]), [2, 3])), [-0.5, -1, -1.5, -2, -2.5, -3]);
    B.addInPlace(a, b, [2, 3]);
    assert.deepEqual(Array.from(take(a, [2, 3])), [11, 22, 33, 44, 55, 66]);
    B.dispose(b);
  });
  test('relu and addRelu', () => {
    const a = B.fromArray(f64(-1, 0, 2, -3), [4]);
    const b = B.fromArray(f64(2, -1, -3, 3), [4]);
    assert.deepEqual(Array.from(take(B.relu(a, [4]), [4])), [0, 0, 2, 0]);
    // a + b = [1, -1, -1, 0] -> [1, 0, 0, 0]
    assert.deepEqual(Array.from(take(B.addRelu(a, b, [4]), [4])), [1, 0, 0, 0]);
    // reluBackward passes dy only where y > 0 (y = [1, 0, 0, 0])
    const y = B.fromArray(f64(1, 0, 0, 0), [4]);
    const dy = B.fromArray(f64(5, 6, 7, 8), [4]);
    assert.deepEqual(Array.from(take(B.reluBackward(dy, y, [4]), [4])), [5, 0, 0, 0]);
    for (const s of [a, b, y, dy]) B.dispose(s);
  });
});

describe('conv2d forward by hand', () => {
  test('3x3 diagonal kernel, stride 1, no padding, bias 0.5', () => {
    // y[p][q] = x[p][q] + x[p+1][q+1] + x[p+2][q+2] + 0.5 on the 4x4 image 1..16:
    //   y00 = 1+6+11+.5 = 18.5, y01 = 2+7+12+.5 = 21.5, y10 = 5+10+15+.5 = 30.5, y11 = 6+11+16+.5 = 33.5
    const x = B.fromArray(X16, [1, 1, 4, 4]);
    const w = B.fromArray(f64(1, 0, 0, 0, 1, 0, 0, 0, 1), [1, 1, 3, 3]);
    const b = B.fromArray(f64(0.5), [1]);
    const y = B.conv2d(x, [1, 1, 4, 4], w, [1, 1, 3, 3], b, { stride: [1, 1], padding: [0, 0] });
    assert.deepEqual(Array.from(take(y, [1, 1, 2, 2])), [18.5, 21.5, 30.5, 33.5]);
    for (const s of [x, w, b]) B.dispose(s);
  });
  test('3x3 box kernel, stride 2, padding 1', () => {
    // out size floor((4 + 2 - 3)/2) + 1 = 2; window rows/cols 2p-1 .. 2p+1, the -1 row/col is zero padding:
    //   y00 = 1+2+5+6 = 14; y01 = (2+3+4)+(6+7+8) = 30; y10 = (5+6)+(9+10)+(13+14) = 57;
    //   y11 = (6+7+8)+(10+11+12)+(14+15+16) = 99
    const x = B.fromArray(X16, [1, 1, 4, 4]);
    const w = B.fromArray(new Float64Array(9).fill(1), [1, 1, 3, 3]);
    const y = B.conv2d(x, [1, 1, 4, 4], w, [1, 1, 3, 3], null, { stride: [2, 2], padding: [1, 1] });
    assert.equal(y.numel, 4);
    assert.deepEqual(Array.from(take(y, [1, 1, 2, 2])), [14, 30, 57, 99]);
    for (const s of [x, w]) B.dispose(s);
  });
  test('output size with stride 2 on odd sizes: 7x5, kernel 3, padding 1 -> 4x3', () => {
    // P = floor((7 + 2 - 3)/2) + 1 = 4, Q = floor((5 + 2 - 3)/2) + 1 = 3
    const x = B.zeros([2, 1, 7, 5], 'float64');
    const w = B.zeros([3, 1, 3, 3], 'float64');
    const y = B.conv2d(x, [2, 1, 7, 5], w, [3, 1, 3, 3], null, { stride: [2, 2], padding: [1, 1] });
    assert.equal(y.numel, 2 * 3 * 4 * 3);
    for (const s of [x, w, y]) B.dispose(s);
  });
  test('channels and batch index correctly (1x1 kernel)', () => {
    // x[n] = [c0, c1] = [2, 3] and [1, -1]; w = [[1, 10], [-1, 0.5]]; y[n,k] = Σ_c w[k,c]·x[n,c]
    //   n0: [2 + 30, -2 + 1.5] = [32, -0.5]; n1: [1 - 10, -1 - 0.5] = [-9, -1.5]
    const x = B.fromArray(f64(2, 3, 1, -1), [2, 2, 1, 1]);
    const w = B.fromArray(f64(1, 10, -1, 0.5), [2, 2, 1, 1]);
    const y = B.conv2d(x, [2, 2, 1, 1], w, [2, 2, 1, 1], null, { stride: [1, 1], padding: [0, 0] });
    assert.deepEqual(Array.from(take(y, [2, 2, 1, 1])), [32, -0.5, -9, -1.5]);
    for (const s of [x, w]) B.dispose(s);
  });
});

describe('batchNorm2d forward by hand', () => {
  // x [N=2, C=2, H=1, W=2] = [n0c0: 5, 5 | n0c1: -1, 1 | n1c0: 5, 9 | n1c1: -1, 1], eps = 1, momentum 0.1
  // c0: values 5,5,5,9: mean 6, biased var (1+1+1+9)/4 = 3, unbiased 12/3 = 4, invstd 1/sqrt(3+1) = 0.5
  //     xhat = [-0.5,-0.5,-0.5,1.5]; gamma 2, beta 1 -> y = [0, 0, 0, 4]
  // c1: values -1,1,-1,1: mean 0, biased var 1, unbiased 4/3, invstd 1/sqrt(2)
  //     xhat = [-1,1,-1,1]/sqrt(2); gamma 3, beta -1 -> y = -1 ∓ 3/sqrt(2)
  // running (from mean 0, var 1): mean = 0.9·0 + 0.1·[6, 0] = [0.6, 0];
  //     var = 0.9·1 + 0.1·[4, 4/3] = [1.3, 1.0333...]
  const shape = [2, 2, 1, 2];
  const x = f64(5, 5, -1, 1, 5, 9, -1, 1);
  const k = 3 / Math.SQRT2;
  const run = (p: BatchNormParams, rm0: Float64Array, rv0: Float64Array) => {
    const xs = B.fromArray(x, shape);
    const g = B.fromArray(f64(2, 3), [2]);
    const b = B.fromArray(f64(1, -1), [2]);
    const rm = B.fromArray(rm0, [2]);
    const rv = B.fromArray(rv0, [2]);
    const out = B.batchNorm2d(xs, shape, g, b, rm, rv, p);
    for (const s of [xs, g, b, ...out.saved.storages]) B.dispose(s);
    return { y: take(out.y, shape), rm: take(rm, [2]), rv: take(rv, [2]) };
  };
  test('training: batch statistics, biased variance; running stats with the unbiased variance', () => {
    const r = run({ eps: 1, momentum: 0.1, training: true, relu: false }, f64(0, 0), f64(1, 1));
    expectClose(r.y, [0, 0, -1 - k, -1 + k, 0, 4, -1 - k, -1 + k], { atol: 1e-12, rtol: 0 });
    expectClose(r.rm, [0.6, 0], { atol: 1e-12, rtol: 0 });
    expectClose(r.rv, [1.3, 0.9 + 0.4 / 3], { atol: 1e-12, rtol: 0 });
  });
  test('training with fused ReLU', () => {
    const r = run({ eps: 1, momentum: 0.1, training: true, relu: true }, f64(0, 0), f64(1, 1));
    expectClose(r.y, [0, 0, 0, -1 + k, 0, 4, 0, -1 + k], { atol: 1e-12, rtol: 0 });
  });
  test('eval: running statistics, left unchanged', () => {
    // running mean [1, -2], var [3, 0], eps 1 -> invstd [0.5, 1]
    // c0: 2·(x − 1)·0.5 + 1 = x: [5, 5, 5, 9]; c1: 3·(x + 2) − 1: x=-1 -> 2, x=1 -> 8
    const r = run({ eps: 1, momentum: 0.1, training: false, relu: false }, f64(1, -2), f64(3, 0));
    expectClose(r.y, [5, 5, 2, 8, 5, 9, 2, 8], { atol: 1e-12, rtol: 0 });
    assert.deepEqual(Array.from(r.rm), [1, -2]);
    assert.deepEqual(Array.from(r.rv), [3, 0]);
  });
});

describe('avgPool2d and linear forward by hand', () => {
  test('kernel 2, stride 2', () => {
    // (1+2+5+6)/4 = 3.5, (3+4+7+8)/4 = 5.5, (9+10+13+14)/4 = 11.5, (11+12+15+16)/4 = 13.5
    const x = B.fromArray(X16, [1, 1, 4, 4]);
    const y = B.avgPool2d(x, [1, 1, 4, 4], { kernel: [2, 2], stride: [2, 2], padding: [0, 0] });
    assert.deepEqual(Array.from(take(y, [1, 1, 2, 2])), [3.5, 5.5, 11.5, 13.5]);
    B.dispose(x);
  });
  test('kernel 3, stride 2, padding 1: padding counted in the divisor (9)', () => {
    // the window sums of the padded box conv above: [14, 30, 57, 99] / 9
    const x = B.fromArray(X16, [1, 1, 4, 4]);
    const y = B.avgPool2d(x, [1, 1, 4, 4], { kernel: [3, 3], stride: [2, 2], padding: [1, 1] });
    expectClose(take(y, [1, 1, 2, 2]), [14 / 9, 30 / 9, 57 / 9, 99 / 9], { atol: 1e-14, rtol: 0 });
    B.dispose(x);
  });
  test('linear y = x·wᵀ + b', () => {
    // x = [1, 2]; rows of w: [1,0] -> 1, [0,1] -> 2, [1,1] -> 3; plus b = [0.5, -1, 0] -> [1.5, 1, 3]
    const x = B.fromArray(f64(1, 2), [1, 2]);
    const w = B.fromArray(f64(1, 0, 0, 1, 1, 1), [3, 2]);
    const b = B.fromArray(f64(0.5, -1, 0), [3]);
    assert.deepEqual(Array.from(take(B.linear(x, [1, 2], w, [3, 2], b), [1, 3])), [1.5, 1, 3]);
    assert.deepEqual(Array.from(take(B.linear(x, [1, 2], w, [3, 2], null), [1, 3])), [1, 2, 3]);
    for (const s of [x, w, b]) B.dispose(s);
  });
});

describe('softmax and cross-entropy by hand', () => {
  // row 0: logits [0, ln2, ln5] -> exp = [1, 2, 5] / 8; row 1: [3, 3, 3] -> 1/3 each
  const logits = f64(0, Math.log(2), Math.log(5), 3, 3, 3);
  const targets = Int32Array.of(2, 0);
  test('softmax and logSoftmax, also after shifting a row by 1000', () => {
    // (1000 + ln 2 carries an absolute rounding error of about 1e-13, hence atol 1e-12)
    const shifted = logits.map((v, i) => (i < 3 ? v + 1000 : v));
    for (const data of [logits, shifted]) {
      const x = B.fromArray(data, [2, 3]);
      expectClose(take(B.softmax(x, [2, 3]), [2, 3]), [1 / 8, 2 / 8, 5 / 8, 1 / 3, 1 / 3, 1 / 3], { atol: 1e-12, rtol: 0 });
      const l8 = Math.log(8);
      const l3 = Math.log(3);
      expectClose(take(B.logSoftmax(x, [2, 3]), [2, 3]), [-l8, Math.log(2) - l8, Math.log(5) - l8, -l3, -l3, -l3], { atol: 1e-12, rtol: 0 });
      B.dispose(x);
    }
  });
  test('cross-entropy without smoothing, and its gradient', () => {
    // row 0 (target 2): −ln(5/8) = ln 1.6; row 1 (target 0): ln 3; mean = (ln 1.6 + ln 3) / 2
    const x = B.fromArray(logits, [2, 3]);
    const { loss, probs } = B.crossEntropy(x, [2, 3], targets, 0);
    expectClose([loss], [(Math.log(1.6) + Math.log(3)) / 2], { atol: 1e-14, rtol: 0 });
    // (probs − onehot) / N · gradOutput, N = 2, gradOutput = 3
    const d = take(B.crossEntropyBackward(probs, [2, 3], targets, 0, 3), [2, 3]);
    // row 0: [1/8, 2/8, 5/8 − 1]·1.5 = [3/16, 6/16, −9/16]; row 1: [1/3 − 1, 1/3, 1/3]·1.5 = [−1, 0.5, 0.5]
    expectClose(d, [3 / 16, 6 / 16, -9 / 16, -1, 0.5, 0.5], { atol: 1e-14, rtol: 0 });
    for (const s of [x, probs]) B.dispose(s);
  });
  test('cross-entropy with label smoothing 0.3', () => {
    // t = 0.7·onehot + 0.1. Row 0: −logp = [ln 8, ln 4, ln 1.6] -> 0.7·ln 1.6 + 0.1·(ln 8 + ln 4 + ln 1.6);
    // row 1: −logp = ln 3 everywhere, Σ t = 1 -> ln 3. Loss = the mean of the two.
    const x = B.fromArray(logits, [2, 3]);
    const { loss, probs } = B.crossEntropy(x, [2, 3], targets, 0.3);
    const row0 = 0.7 * Math.log(1.6) + 0.1 * (Math.log(8) + Math.log(4) + Math.log(1.6));
    expectClose([loss], [(row0 + Math.log(3)) / 2], { atol: 1e-14, rtol: 0 });
    // gradient (probs − t)/2: row 0: [1/8 − 0.1, 2/8 − 0.1, 5/8 − 0.8]/2; row 1: [1/3 − 0.8, 1/3 − 0.1, 1/3 − 0.1]/2
    const d = take(B.crossEntropyBackward(probs, [2, 3], targets, 0.3, 1), [2, 3]);
    expectClose(d, [0.025 / 2, 0.15 / 2, -0.175 / 2, (1 / 3 - 0.8) / 2, (1 / 3 - 0.1) / 2, (1 / 3 - 0.1) / 2], { atol: 1e-14, rtol: 0 });
    for (const s of [x, probs]) B.dispose(s);
  });
  test('logits of ±1e4 stay finite (float32 and float64); softmax rows sum to 1', () => {
    // row 0 (target 1): logZ = 1e4, −logp_1 = 2e4; row 1 (target 2): logZ = 1e4, −logp_2 = 0 -> mean 1e4
    const big = [1e4, -1e4, 0, -1e4, -1e4, 1e4];
    for (const data of [Float64Array.from(big), Float32Array.from(big)]) {
      const x = B.fromArray(data, [2, 3]);
      const { loss, probs } = B.crossEntropy(x, [2, 3], Int32Array.of(1, 2), 0.1);
      assert.ok(Number.isFinite(loss), `loss ${loss} must be finite`);
      // with ε = 0.1: row 0 = 0.9·2e4 + (0.1/3)·(0 + 2e4 + 1e4) = 19000; row 1 = (0.1/3)·(2e4 + 2e4) = 1333.3
      expectClose([loss], [(19000 + 4000 / 3) / 2], { atol: 0, rtol: 1e-6 });
      const g = take(B.crossEntropyBackward(probs, [2, 3], Int32Array.of(1, 2), 0.1, 1), [2, 3]);
      assert.ok(g.every(Number.isFinite), `gradient ${g} must be finite`);
      const p = take(probs, [2, 3]);
      assert.ok(p.every(Number.isFinite), `probs ${p} must be finite`);
      assert.ok(Math.abs(p[0] + p[1] + p[2] - 1) <= 1e-6 && Math.abs(p[3] + p[4] + p[5] - 1) <= 1e-6);
      B.dispose(x);
    }
  });
  test('softmax rows sum to 1 within 1e-6 in float32, for wide-ranging logits', () => {
    const rng = new Rng(7);
    const x = B.fromArray(Float32Array.from(uniform(rng, [8, 10], -50, 50)), [8, 10]);
    const p = take(B.softmax(x, [8, 10]), [8, 10]);
    for (let n = 0; n < 8; n++) {
      let s = 0;
      for (let c = 0; c < 10; c++) s += p[n * 10 + c];
      assert.ok(Math.abs(s - 1) <= 1e-6, `row ${n} sums to ${s}`);
    }
    B.dispose(x);
  });
});

describe('sgdStep: three steps by hand (param 1, grads 1, 2, −1, lr 0.1)', () => {
  const grads = [1, 2, -1];
  const base: SgdParams = { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false };
  const steps = (p: SgdParams, dtype: 'float32' | 'float64' = 'float64'): number[] => {
    const make = (v: number) => B.fromArray(dtype === 'float64' ? f64(v) : Float32Array.of(v), [1]);
    const param = make(1);
    const buf = p.momentum > 0 ? make(0) : null;
    const trace: number[] = [];
    grads.forEach((g, i) => {
      const grad = make(g);
      B.sgdStep(param, grad, buf, [1], p, i === 0);
      B.dispose(grad);
      trace.push(B.toArray(param, [1])[0]);
    });
    B.dispose(param);
    if (buf) B.dispose(buf);
    return trace;
  };
  test('plain: 1 − 0.1 = 0.9, − 0.2 = 0.7, + 0.1 = 0.8', () => {
    expectClose(steps(base), [0.9, 0.7, 0.8], { atol: 1e-15, rtol: 0 });
  });
  test('momentum 0.9: buf 1, 2.9, 1.61 -> 0.9, 0.61, 0.449', () => {
    expectClose(steps({ ...base, momentum: 0.9 }), [0.9, 0.61, 0.449], { atol: 1e-15, rtol: 0 });
  });
  test('momentum 0.9, dampening 0.5: first buf undamped (1), then 0.9 + 1 = 1.9, 1.71 − 0.5 = 1.21', () => {
    // params: 1 − 0.1 = 0.9, 0.9 − 0.19 = 0.71, 0.71 − 0.121 = 0.589
    expectClose(steps({ ...base, momentum: 0.9, dampening: 0.5 }), [0.9, 0.71, 0.589], { atol: 1e-15, rtol: 0 });
  });
  test('weight decay 0.1: g + 0.1·param', () => {
    // g' = 1.1 -> 0.89; g' = 2 + 0.089 = 2.089 -> 0.6811; g' = −1 + 0.06811 = −0.93189 -> 0.774289
    expectClose(steps({ ...base, weightDecay: 0.1 }), [0.89, 0.6811, 0.774289], { atol: 1e-15, rtol: 0 });
  });
  test('nesterov, momentum 0.9: g + 0.9·buf', () => {
    // buf 1, g 1.9 -> 0.81; buf 2.9, g 2 + 2.61 = 4.61 -> 0.349; buf 1.61, g −1 + 1.449 = 0.449 -> 0.3041
    expectClose(steps({ ...base, momentum: 0.9, nesterov: true }), [0.81, 0.349, 0.3041], { atol: 1e-15, rtol: 0 });
  });
  test('all together in float32 (momentum 0.9, weight decay 0.1, nesterov), within float32 rounding', () => {
    // g' = 1.1, buf 1.1, g 1.1 + 0.99 = 2.09 -> 0.791
    // g' = 2 + 0.0791 = 2.0791, buf 0.99 + 2.0791 = 3.0691, g 2.0791 + 2.76219 = 4.84129 -> 0.306871
    // g' = −1 + 0.0306871 = −0.9693129, buf 2.76219 − 0.9693129 = 1.7928771,
    //   g −0.9693129 + 1.61358939 = 0.64427649 -> 0.306871 − 0.064427649 = 0.242443351
    const r = steps({ ...base, momentum: 0.9, weightDecay: 0.1, nesterov: true }, 'float32');
    expectClose(r, [0.791, 0.306871, 0.242443351], { atol: 1e-6, rtol: 0 });
  });
});

describe('float32 storages compute in float32', () => {
  test('conv2d in float32 matches float64 within float32 rounding, and returns float32', () => {
    const rng = new Rng(3);
    const x = uniform(rng, [2, 3, 6, 5]);
    const w = uniform(rng, [4, 3, 3, 3]);
    const p = { stride: [2, 1] as [number, number], padding: [1, 1] as [number, number] };
    const run = (cast: (a: Float64Array) => Float32Array | Float64Array) => {
      const xs = B.fromArray(cast(x), [2, 3, 6, 5]);
      const ws = B.fromArray(cast(w), [4, 3, 3, 3]);
      const y = B.conv2d(xs, [2, 3, 6, 5], ws, [4, 3, 3, 3], null, p);
      const out = B.toArray(y, [2, 4, 3, 5]);
      for (const s of [xs, ws, y]) B.dispose(s);
      return out;
    };
    const y32 = run((a) => Float32Array.from(a));
    const y64 = run((a) => a);
    assert.ok(y32 instanceof Float32Array);
    expectClose(y32, y64, { atol: 1e-5, rtol: 1e-5 });
  });
});

describe('NaN propagation (as PyTorch: relu(NaN) = NaN, so a NaN reaches the loss and is detected)', () => {
  const be = createReferenceBackend();
  test('relu, addRelu and BatchNorm with fused ReLU pass NaN through', () => {
    const x = be.fromArray(Float32Array.of(NaN, -1, 2, 0), [4]);
    assert.ok(Number.isNaN(be.toArray(be.relu(x, [4]), [4])[0]));
    const z = be.fromArray(Float32Array.of(0, 0, 0, 0), [4]);
    assert.ok(Number.isNaN(be.toArray(be.addRelu(x, z, [4]), [4])[0]));
    const shape = [2, 1, 1, 2];
    const xb = be.fromArray(Float32Array.of(NaN, 1, 2, 3), shape);
    const one = () => be.fromArray(Float32Array.of(1), [1]);
    const zero = () => be.fromArray(Float32Array.of(0), [1]);
    const { y } = be.batchNorm2d(xb, shape, one(), zero(), zero(), one(), { training: false, momentum: 0.1, eps: 1e-5, relu: true });
    assert.ok(Number.isNaN(be.toArray(y, shape)[0]));
  });
});
