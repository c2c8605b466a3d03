/**
 * Reference backend: 2-D convolution (cross-correlation, as PyTorch's nn.Conv2d), forward and backward.
 *
 * What it is: direct seven-loop kernels over plain NCHW arrays, zero padding, any stride; the oracle the
 * native backend is checked against. What it is not: fast (no im2col, no blocking) and no dilation or groups.
 * References: PyTorch nn.Conv2d docs (output size floor((H + 2·pad − R)/stride) + 1); llm.c's
 * forward/backward pairing.
 */
import type { Conv2dParams, Shape, Storage } from '../backend';
import { convOutputShape, numelOf } from '../backend';
import { RefStorage, expectPair, expectShape, fmtShape, input, inputOf, storageFrom } from './storage';

/** Sizes of one convolution, in the project's letters. */
interface ConvDims {
  N: number; C: number; H: number; W: number;
  K: number; R: number; S: number; P: number; Q: number;
  sh: number; sw: number; ph: number; pw: number;
}

/** Validates shapes and params; returns all sizes. */
function convDims(op: string, xShape: Shape, wShape: Shape, p: Conv2dParams): ConvDims {
  expectShape(op, 'x', xShape, 'N,C,H,W');
  expectShape(op, 'w', wShape, 'K,C,R,S');
  expectPair(op, 'stride', p.stride, 1);
  expectPair(op, 'padding', p.padding, 0);
  const [N, C, H, W] = xShape;
  const [K, Cw, R, S] = wShape;
  if (Cw !== C) {
    throw new Error(`${op}: expected w [K,C,R,S] with C=${C} (x's channels), received w ${fmtShape(wShape)}`);
  }
  const [, , P, Q] = convOutputShape(xShape, wShape, p);
  if (P < 1 || Q < 1) {
    throw new Error(
      `${op}: kernel ${R}x${S} larger than padded input ${H + 2 * p.padding[0]}x${W + 2 * p.padding[1]} ` +
        `(x ${fmtShape(xShape)}, padding [${p.padding.join(',')}])`,
    );
  }
  return { N, C, H, W, K, R, S, P, Q, sh: p.stride[0], sw: p.stride[1], ph: p.padding[0], pw: p.padding[1] };
}

/** y[n,k,p,q] = b[k] + Σ_{c,r,s} x[n,c,p·sh−ph+r, q·sw−pw+s] · w[k,c,r,s]; out-of-bounds x reads as 0. */
function conv2dForward(y: Float64Array, x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | null, d: ConvDims): void {
  const { N, C, H, W, K, R, S, P, Q, sh, sw, ph, pw } = d;
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      for (let p = 0; p < P; p++) {
        for (let q = 0; q < Q; q++) {
          let acc = b === null ? 0 : b[k];
          for (let c = 0; c < C; c++) {
            for (let r = 0; r < R; r++) {
              const h = p * sh - ph + r;
              if (h < 0 || h >= H) continue;
              for (let s = 0; s < S; s++) {
                const ww = q * sw - pw + s;
                if (ww < 0 || ww >= W) continue;
                acc += x[((n * C + c) * H + h) * W + ww] * w[((k * C + c) * R + r) * S + s];
              }
            }
          }
          y[((n * K + k) * P + p) * Q + q] = acc;
        }
      }
    }
  }
}

/**
 * The backward pass visits the same (n,k,p,q,c,r,s) index set as the forward pass and, for each term
 * x·w of the forward sum, scatters dy·w into dx (when dx is given) and dy·x into dw (when dw is given).
 */
function conv2dBackward(
  dx: Float64Array | null, dw: Float64Array | null, dy: ArrayLike<number>,
  x: ArrayLike<number> | null, w: ArrayLike<number> | null, d: ConvDims,
): void {
  const { N, C, H, W, K, R, S, P, Q, sh, sw, ph, pw } = d;
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      for (let p = 0; p < P; p++) {
        for (let q = 0; q < Q; q++) {
          const g = dy[((n * K + k) * P + p) * Q + q];
          for (let c = 0; c < C; c++) {
            for (let r = 0; r < R; r++) {
              const h = p * sh - ph + r;
              if (h < 0 || h >= H) continue;
              for (let s = 0; s < S; s++) {
                const ww = q * sw - pw + s;
                if (ww < 0 || ww >= W) continue;
                const xi = ((n * C + c) * H + h) * W + ww;
                const wi = ((k * C + c) * R + r) * S + s;
                if (dx !== null && w !== null) dx[xi] += g * w[wi];
                if (dw !== null && x !== null) dw[wi] += g * x[xi];
              }
            }
          }
        }
      }
    }
  }
}

/** x [N,C,H,W], w [K,C,R,S], b [K] | null -> y [N,K,P,Q] */
export function conv2d(x: Storage, xShape: Shape, w: Storage, wShape: Shape, b: Storage | null, p: Conv2dParams): Storage {
  const op = 'conv2d';
  const d = convDims(op, xShape, wShape, p);
  const xd = inputOf(op, 'x', x, xShape);
  const wd = inputOf(op, 'w', w, wShape, x.dtype);
  const bd = b === null ? null : input(op, 'b', b, d.K, x.dtype);
  const y = new Float64Array(d.N * d.K * d.P * d.Q);
  conv2dForward(y, xd, wd, bd, d);
  return storageFrom(x.dtype, y);
}

/** dy [N,K,P,Q], w [K,C,R,S] -> dx [N,C,H,W] */
export function conv2dBackwardData(dy: Storage, w: Storage, xShape: Shape, wShape: Shape, p: Conv2dParams): Storage {
  const op = 'conv2dBackwardData';
  const d = convDims(op, xShape, wShape, p);
  const dyd = input(op, 'dy', dy, d.N * d.K * d.P * d.Q);
  const wd = inputOf(op, 'w', w, wShape, dy.dtype);
  const dx = new Float64Array(numelOf(xShape));
  conv2dBackward(dx, null, dyd, null, wd, d);
  return storageFrom(dy.dtype, dx);
}

/** dy [N,K,P,Q], x [N,C,H,W] -> dw [K,C,R,S], db [K] (db = Σ_{n,p,q} dy) */
export function conv2dBackwardWeights(
  dy: Storage, x: Storage, xShape: Shape, wShape: Shape, p: Conv2dParams, withBias: boolean,
): { dw: Storage; db: Storage | null } {
  const op = 'conv2dBackwardWeights';
  const d = convDims(op, xShape, wShape, p);
  const dyd = input(op, 'dy', dy, d.N * d.K * d.P * d.Q);
  const xd = inputOf(op, 'x', x, xShape, dy.dtype);
  const dw = new Float64Array(numelOf(wShape));
  conv2dBackward(null, dw, dyd, xd, null, d);
  let db: RefStorage | null = null;
  if (withBias) {
    const acc = new Float64Array(d.K);
    const PQ = d.P * d.Q;
    for (let n = 0; n < d.N; n++) {
      for (let k = 0; k < d.K; k++) {
        for (let i = 0; i < PQ; i++) acc[k] += dyd[(n * d.K + k) * PQ + i];
      }
    }
    db = storageFrom(dy.dtype, acc);
  }
  return { dw: storageFrom(dy.dtype, dw), db };
}
