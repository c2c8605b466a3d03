/**
 * Reference backend: softmax and log-softmax over the last axis of [N,C], and their backward passes.
 *
 * What it is: the numerically stable forms (subtract the row max before exp; log-softmax as
 * x − max − log Σ exp(x − max)), so that logits of ±1e4 stay finite. What it is not: other axes.
 * References: PyTorch F.softmax / F.log_softmax docs; backward formulas in src/backend/backend.ts.
 */
import type { Shape, Storage } from '../backend';
import { expectShape, inputOf, storageFrom } from './storage';

/** Writes log-softmax of row x[off .. off+C) into out[off ..], in doubles. */
export function logSoftmaxRow(out: Float64Array, x: ArrayLike<number>, off: number, C: number): void {
  let max = -Infinity;
  for (let c = 0; c < C; c++) max = Math.max(max, x[off + c]);
  let s = 0;
  for (let c = 0; c < C; c++) s += Math.exp(x[off + c] - max);
  const logZ = max + Math.log(s);
  for (let c = 0; c < C; c++) out[off + c] = x[off + c] - logZ;
}

/** Writes softmax of row x[off .. off+C) into out[off ..], in doubles. */
export function softmaxRow(out: Float64Array, x: ArrayLike<number>, off: number, C: number): void {
  let max = -Infinity;
  for (let c = 0; c < C; c++) max = Math.max(max, x[off + c]);
  let s = 0;
  for (let c = 0; c < C; c++) {
    out[off + c] = Math.exp(x[off + c] - max);
    s += out[off + c];
  }
  for (let c = 0; c < C; c++) out[off + c] /= s;
}

function rows(op: string, x: Storage, shape: Shape, name: string): { xd: ArrayLike<number>; N: number; C: number } {
  expectShape(op, name, shape, 'N,C');
  return { xd: inputOf(op, name, x, shape), N: shape[0], C: shape[1] };
}

/** x [N,C] -> y [N,C], y[n,:] = exp(x[n,:] − max) / Σ exp(x[n,:] − max) */
export function softmax(x: Storage, shape: Shape): Storage {
  const { xd, N, C } = rows('softmax', x, shape, 'x');
  const y = new Float64Array(N * C);
  for (let n = 0; n < N; n++) softmaxRow(y, xd, n * C, C);
  return storageFrom(x.dtype, y);
}

/** x [N,C] -> y [N,C], y[n,:] = x[n,:] − max − log Σ exp(x[n,:] − max) */
export function logSoftmax(x: Storage, shape: Shape): Storage {
  const { xd, N, C } = rows('logSoftmax', x, shape, 'x');
  const y = new Float64Array(N * C);
  for (let n = 0; n < N; n++) logSoftmaxRow(y, xd, n * C, C);
  return storageFrom(x.dtype, y);
}

/** dx = y·(dy − Σ_c dy·y) per row, y = softmax(x) */
export function softmaxBackward(dy: Storage, y: Storage, shape: Shape): Storage {
  const op = 'softmaxBackward';
  const { xd: dyd, N, C } = rows(op, dy, shape, 'dy');
  const yd = inputOf(op, 'y', y, shape, dy.dtype);
  const dx = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    let dot = 0;
    for (let c = 0; c < C; c++) dot += dyd[n * C + c] * yd[n * C + c];
    for (let c = 0; c < C; c++) dx[n * C + c] = yd[n * C + c] * (dyd[n * C + c] - dot);
  }
  return storageFrom(dy.dtype, dx);
}

/** dx = dy − exp(y)·Σ_c dy per row, y = logSoftmax(x) */
export function logSoftmaxBackward(dy: Storage, y: Storage, shape: Shape): Storage {
  const op = 'logSoftmaxBackward';
  const { xd: dyd, N, C } = rows(op, dy, shape, 'dy');
  const yd = inputOf(op, 'y', y, shape, dy.dtype);
  const dx = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += dyd[n * C + c];
    for (let c = 0; c < C; c++) dx[n * C + c] = dyd[n * C + c] - Math.exp(yd[n * C + c]) * s;
  }
  return storageFrom(dy.dtype, dx);
}
