/**
 * Reference backend: elementwise kernels (add, in-place add, scale, ReLU and the residual add+ReLU) and sum.
 *
 * What it is: same-shape loops over plain arrays; the shape argument is only validated (numel).
 * What it is not: broadcasting, which lives above the backend.
 * References: src/backend/backend.ts for each kernel's contract.
 */
import type { Shape, Storage } from '../backend';
import { expectAnyShape, inputOf, storageFrom } from './storage';

/** Validates two same-shape inputs of one dtype; returns their buffers. */
function pair(op: string, a: Storage, b: Storage, shape: Shape, names: [string, string]): [ArrayLike<number>, ArrayLike<number>] {
  expectAnyShape(op, 'shape', shape);
  const ad = inputOf(op, names[0], a, shape);
  const bd = inputOf(op, names[1], b, shape, a.dtype);
  return [ad, bd];
}

/** a + b */
export function add(a: Storage, b: Storage, shape: Shape): Storage {
  const [ad, bd] = pair('add', a, b, shape, ['a', 'b']);
  const y = new Float64Array(ad.length);
  for (let i = 0; i < y.length; i++) y[i] = ad[i] + bd[i];
  return storageFrom(a.dtype, y);
}

/** a += b */
export function addInPlace(a: Storage, b: Storage, shape: Shape): void {
  expectAnyShape('addInPlace', 'shape', shape);
  const ad = inputOf('addInPlace', 'a', a, shape);
  const bd = inputOf('addInPlace', 'b', b, shape, a.dtype);
  for (let i = 0; i < ad.length; i++) ad[i] += bd[i];
}

/** a · s */
export function scale(a: Storage, s: number, shape: Shape): Storage {
  expectAnyShape('scale', 'shape', shape);
  if (typeof s !== 'number') throw new Error(`scale: expected a number factor, received ${typeof s}`);
  const ad = inputOf('scale', 'a', a, shape);
  const y = new Float64Array(ad.length);
  for (let i = 0; i < y.length; i++) y[i] = ad[i] * s;
  return storageFrom(a.dtype, y);
}

/** y = max(0, x) */
export function relu(x: Storage, shape: Shape): Storage {
  expectAnyShape('relu', 'shape', shape);
  const xd = inputOf('relu', 'x', x, shape);
  const y = new Float64Array(xd.length);
  // `x <= 0 ? 0 : x` keeps NaN as NaN, as PyTorch's relu does (NaN must reach the loss to be detected)
  for (let i = 0; i < y.length; i++) y[i] = xd[i] <= 0 ? 0 : xd[i];
  return storageFrom(x.dtype, y);
}

/** dx = dy where y > 0 else 0 (y is the ReLU's output; PyTorch's threshold_backward) */
export function reluBackward(dy: Storage, y: Storage, shape: Shape): Storage {
  const [dyd, yd] = pair('reluBackward', dy, y, shape, ['dy', 'y']);
  const dx = new Float64Array(dyd.length);
  for (let i = 0; i < dx.length; i++) dx[i] = yd[i] > 0 ? dyd[i] : 0;
  return storageFrom(dy.dtype, dx);
}

/** y = max(0, a + b): the residual join of a BasicBlock */
export function addRelu(a: Storage, b: Storage, shape: Shape): Storage {
  const [ad, bd] = pair('addRelu', a, b, shape, ['a', 'b']);
  const y = new Float64Array(ad.length);
  for (let i = 0; i < y.length; i++) {
    // round the sum to the storage dtype first, so that y > 0 exactly where the stored sum is > 0
    const s = a.dtype === 'float32' ? Math.fround(ad[i] + bd[i]) : ad[i] + bd[i];
    y[i] = s <= 0 ? 0 : s; // NaN stays NaN
  }
  return storageFrom(a.dtype, y);
}

/** Σ a, accumulated in doubles */
export function sum(a: Storage, shape: Shape): number {
  expectAnyShape('sum', 'shape', shape);
  const ad = inputOf('sum', 'a', a, shape);
  let s = 0;
  for (let i = 0; i < ad.length; i++) s += ad[i];
  return s;
}
