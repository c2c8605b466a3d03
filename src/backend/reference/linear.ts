/**
 * Reference backend: the fully connected layer y = x·wᵀ + b, forward and backward.
 *
 * What it is: PyTorch's nn.Linear over a 2-D input x [N,I] with w [O,I] (out-features first, as in a
 * state_dict). What it is not: a batched matmul for higher ranks.
 * References: PyTorch nn.Linear docs.
 */
import type { Shape, Storage } from '../backend';
import { expectShape, fmtShape, input, inputOf, storageFrom } from './storage';

function linearDims(op: string, xShape: Shape, wShape: Shape): { N: number; I: number; O: number } {
  expectShape(op, 'x', xShape, 'N,I');
  expectShape(op, 'w', wShape, 'O,I');
  if (xShape[1] !== wShape[1]) {
    throw new Error(`${op}: expected w [O,I] with I=${xShape[1]} (x's features), received w ${fmtShape(wShape)}`);
  }
  return { N: xShape[0], I: xShape[1], O: wShape[0] };
}

/** x [N,I], w [O,I], b [O] | null -> y [N,O], y[n,o] = b[o] + Σ_i x[n,i]·w[o,i] */
export function linear(x: Storage, xShape: Shape, w: Storage, wShape: Shape, b: Storage | null): Storage {
  const op = 'linear';
  const { N, I, O } = linearDims(op, xShape, wShape);
  const xd = inputOf(op, 'x', x, xShape);
  const wd = inputOf(op, 'w', w, wShape, x.dtype);
  const bd = b === null ? null : input(op, 'b', b, O, x.dtype);
  const y = new Float64Array(N * O);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      let acc = bd === null ? 0 : bd[o];
      for (let i = 0; i < I; i++) acc += xd[n * I + i] * wd[o * I + i];
      y[n * O + o] = acc;
    }
  }
  return storageFrom(x.dtype, y);
}

/** dy [N,O] -> dx [N,I] = dy·w, dw [O,I] = dyᵀ·x, db [O] = Σ_n dy */
export function linearBackward(
  dy: Storage, x: Storage, xShape: Shape, w: Storage, wShape: Shape, withBias: boolean,
): { dx: Storage; dw: Storage; db: Storage | null } {
  const op = 'linearBackward';
  const { N, I, O } = linearDims(op, xShape, wShape);
  const dyd = input(op, 'dy', dy, N * O);
  const xd = inputOf(op, 'x', x, xShape, dy.dtype);
  const wd = inputOf(op, 'w', w, wShape, dy.dtype);
  const dx = new Float64Array(N * I);
  const dw = new Float64Array(O * I);
  const db = new Float64Array(O);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const g = dyd[n * O + o];
      db[o] += g;
      for (let i = 0; i < I; i++) {
        dx[n * I + i] += g * wd[o * I + i];
        dw[o * I + i] += g * xd[n * I + i];
      }
    }
  }
  const dt = dy.dtype;
  return { dx: storageFrom(dt, dx), dw: storageFrom(dt, dw), db: withBias ? storageFrom(dt, db) : null };
}
