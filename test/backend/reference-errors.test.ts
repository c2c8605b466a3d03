/**
 * Error messages of the reference backend: each names the operation, what it expected and what it received
 * (wrong rank or shape, disposed storages, mixed dtypes, foreign storages, out-of-range targets).
 * Not a test of values (reference-forward.test.ts) or gradients (reference-gradcheck.test.ts).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BatchNormParams, Storage } from '../../src/backend/backend';
import { B } from './reference-util';

const f64 = (n: number) => new Float64Array(n).fill(0.5);
const f32 = (n: number) => new Float32Array(n).fill(0.5);
const conv = { stride: [1, 1] as [number, number], padding: [0, 0] as [number, number] };

describe('shape and rank errors', () => {
  test('conv2d: wrong rank of x', () => {
    const x = B.fromArray(f32(3 * 32 * 32), [3, 32, 32]);
    const w = B.fromArray(f32(8 * 3 * 9), [8, 3, 3, 3]);
    assert.throws(() => B.conv2d(x, [3, 32, 32], w, [8, 3, 3, 3], null, conv), {
      message: 'conv2d: expected x of rank 4 [N,C,H,W], received [3,32,32]',
    });
    B.dispose(x);
    B.dispose(w);
  });
  test('conv2d: channel mismatch, kernel larger than input, numel mismatch', () => {
    const x = B.fromArray(f64(2 * 5 * 5), [1, 2, 5, 5]);
    const w = B.fromArray(f64(4 * 3 * 9), [4, 3, 3, 3]);
    assert.throws(() => B.conv2d(x, [1, 2, 5, 5], w, [4, 3, 3, 3], null, conv), /conv2d: expected w \[K,C,R,S\] with C=2.*received w \[4,3,3,3\]/);
    const big = B.fromArray(f64(2 * 49), [1, 2, 7, 7]);
    assert.throws(() => B.conv2d(x, [1, 2, 5, 5], big, [1, 2, 7, 7], null, conv), /conv2d: kernel 7x7 larger than padded input 5x5/);
    assert.throws(() => B.conv2d(x, [1, 2, 4, 4], big, [1, 2, 3, 3], null, conv), /conv2d: expected x with 32 elements, received 50/);
    assert.throws(() => B.conv2d(x, [1, 2, 5, 5], big, [1, 2, 3, 3], null, { stride: [0, 1], padding: [0, 0] }), /conv2d: expected stride to be two integers >= 1, received 0,1/);
    for (const s of [x, w, big]) B.dispose(s);
  });
  test('linear: feature mismatch; softmax: rank', () => {
    const x = B.fromArray(f64(6), [2, 3]);
    const w = B.fromArray(f64(8), [2, 4]);
    assert.throws(() => B.linear(x, [2, 3], w, [2, 4], null), { message: 'linear: expected w [O,I] with I=3 (x\'s features), received w [2,4]' });
    assert.throws(() => B.softmax(x, [6]), { message: 'softmax: expected x of rank 2 [N,C], received [6]' });
    B.dispose(x);
    B.dispose(w);
  });
  test('avgPool2d: padding above half the kernel; reshape: element count; fromArray: length', () => {
    const x = B.fromArray(f64(16), [1, 1, 4, 4]);
    assert.throws(() => B.avgPool2d(x, [1, 1, 4, 4], { kernel: [2, 2], stride: [1, 1], padding: [2, 2] }), /avgPool2d: expected padding at most half the kernel 2x2, received \[2,2\]/);
    assert.throws(() => B.reshape(x, [1, 1, 4, 4], [3, 5]), /reshape: expected toShape with 16 elements .*received \[3,5\]/);
    assert.throws(() => B.fromArray(f64(5), [2, 3]), { message: 'fromArray: expected 6 elements for shape [2,3], received 5' });
    B.dispose(x);
  });
});

describe('storage lifetime and ownership', () => {
  test('using a disposed storage is an error naming the operation and argument', () => {
    const a = B.fromArray(f64(4), [4]);
    const b = B.fromArray(f64(4), [4]);
    B.dispose(a);
    assert.throws(() => B.relu(a, [4]), /relu: x is a disposed storage/);
    assert.throws(() => B.add(b, a, [4]), /add: b is a disposed storage/);
    assert.throws(() => B.toArray(a, [4]), /toArray: storage is a disposed storage/);
    assert.throws(() => B.dispose(a), /dispose: storage is a disposed storage/);
    B.dispose(b);
  });
  test('a storage of another backend is rejected', () => {
    const foreign: Storage = { backend: 'native', dtype: 'float32', numel: 4 };
    assert.throws(() => B.relu(foreign, [4]), { message: "relu: expected x to be a storage of the reference backend, received one from 'native'" });
  });
});

describe('dtype mixing', () => {
  test('float64 with float32 is an error', () => {
    const a = B.fromArray(f64(4), [4]);
    const b = B.fromArray(f32(4), [4]);
    assert.throws(() => B.add(a, b, [4]), { message: 'add: expected b of dtype float64 (the dtype of the first input), received float32' });
    assert.throws(() => B.addInPlace(b, a, [4]), /addInPlace: expected b of dtype float32 .*received float64/);
    const x = B.fromArray(f32(9), [1, 1, 3, 3]);
    const w = B.fromArray(f64(9), [1, 1, 3, 3]);
    assert.throws(() => B.conv2d(x, [1, 1, 3, 3], w, [1, 1, 3, 3], null, conv), /conv2d: expected w of dtype float32 .*received float64/);
    for (const s of [a, b, x, w]) B.dispose(s);
  });
});

describe('loss, batch norm and optimiser arguments', () => {
  test('crossEntropy: a target out of range names its index', () => {
    const x = B.fromArray(f64(6), [2, 3]);
    assert.throws(() => B.crossEntropy(x, [2, 3], Int32Array.of(0, 3), 0), { message: 'crossEntropy: target 3 at index 1 is out of range [0, 3)' });
    assert.throws(() => B.crossEntropy(x, [2, 3], Int32Array.of(-1, 0), 0), /target -1 at index 0/);
    assert.throws(() => B.crossEntropy(x, [2, 3], Int32Array.of(0), 0), /crossEntropy: expected 2 targets \(one per row\), received 1/);
    B.dispose(x);
  });
  test('batchNorm2d: one value per channel in training; backward with other params than forward', () => {
    const shape = [1, 2, 1, 1];
    const x = B.fromArray(f64(2), shape);
    const c = () => B.fromArray(f64(2), [2]);
    const [g, b, rm, rv] = [c(), c(), c(), c()];
    const p: BatchNormParams = { eps: 1e-5, momentum: 0.1, training: true, relu: false };
    assert.throws(() => B.batchNorm2d(x, shape, g, b, rm, rv, p), /batchNorm2d: training needs more than 1 value per channel/);
    const evalP = { ...p, training: false };
    const out = B.batchNorm2d(x, shape, g, b, rm, rv, evalP);
    assert.throws(() => B.batchNorm2dBackward(out.y, x, shape, g, b, out.saved, p), /batchNorm2dBackward: expected params matching the forward pass \(training=false/);
    for (const s of [x, g, b, rm, rv, out.y, ...out.saved.storages]) B.dispose(s);
  });
  test('sgdStep: nesterov needs momentum and no dampening; momentum needs a buffer', () => {
    const w = B.fromArray(f64(2), [2]);
    const g = B.fromArray(f64(2), [2]);
    const p = { lr: 0.1, momentum: 0.9, dampening: 0.1, weightDecay: 0, nesterov: true };
    const buf = B.zeros([2], 'float64');
    assert.throws(() => B.sgdStep(w, g, buf, [2], p, true), /sgdStep: nesterov expects momentum > 0 and dampening 0/);
    assert.throws(() => B.sgdStep(w, g, null, [2], { ...p, nesterov: false }, true), /sgdStep: expected a momentum buffer for momentum 0.9, received null/);
    for (const s of [w, g, buf]) B.dispose(s);
  });
});
