/**
 * Reference backend: 2-D average pooling, forward and backward.
 *
 * What it is: PyTorch's nn.AvgPool2d with count_include_pad=True and ceil_mode=False: every window divides
 * by R·S, zero padding included. What it is not: max pooling, ceil mode or a divisor override.
 * References: PyTorch AvgPool2d docs (output size and the rule padding <= kernel/2).
 */
import type { Pool2dParams, Shape, Storage } from '../backend';
import { numelOf, poolOutputShape } from '../backend';
import { expectPair, expectShape, fmtShape, input, inputOf, storageFrom } from './storage';

interface PoolDims {
  N: number; C: number; H: number; W: number; P: number; Q: number;
  R: number; S: number; sh: number; sw: number; ph: number; pw: number;
}

function poolDims(op: string, xShape: Shape, p: Pool2dParams): PoolDims {
  expectShape(op, 'x', xShape, 'N,C,H,W');
  expectPair(op, 'kernel', p.kernel, 1);
  expectPair(op, 'stride', p.stride, 1);
  expectPair(op, 'padding', p.padding, 0);
  const [R, S] = p.kernel;
  if (2 * p.padding[0] > R || 2 * p.padding[1] > S) {
    throw new Error(`${op}: expected padding at most half the kernel ${R}x${S}, received [${p.padding.join(',')}]`);
  }
  const [N, C, P, Q] = poolOutputShape(xShape, p);
  if (P < 1 || Q < 1) {
    throw new Error(`${op}: kernel ${R}x${S} larger than padded input (x ${fmtShape(xShape)}, padding [${p.padding.join(',')}])`);
  }
  const [, , H, W] = xShape;
  return { N, C, H, W, P, Q, R, S, sh: p.stride[0], sw: p.stride[1], ph: p.padding[0], pw: p.padding[1] };
}

/**
 * Visits every (window, in-bounds input) pair: y[n,c,p,q] = Σ x[n,c,h,w] / (R·S) over the window's in-bounds
 * cells. `visit(yi, xi)` receives the flat indices.
 */
function forEachWindowCell(d: PoolDims, visit: (yi: number, xi: number) => void): void {
  const { N, C, H, W, P, Q, R, S, sh, sw, ph, pw } = d;
  for (let nc = 0; nc < N * C; nc++) {
    for (let p = 0; p < P; p++) {
      for (let q = 0; q < Q; q++) {
        const yi = (nc * P + p) * Q + q;
        for (let r = 0; r < R; r++) {
          const h = p * sh - ph + r;
          if (h < 0 || h >= H) continue;
          for (let s = 0; s < S; s++) {
            const w = q * sw - pw + s;
            if (w >= 0 && w < W) visit(yi, (nc * H + h) * W + w);
          }
        }
      }
    }
  }
}

/** x [N,C,H,W] -> y [N,C,P,Q] */
export function avgPool2d(x: Storage, xShape: Shape, p: Pool2dParams): Storage {
  const op = 'avgPool2d';
  const d = poolDims(op, xShape, p);
  const xd = inputOf(op, 'x', x, xShape);
  const y = new Float64Array(d.N * d.C * d.P * d.Q);
  const inv = 1 / (d.R * d.S);
  forEachWindowCell(d, (yi, xi) => {
    y[yi] += xd[xi];
  });
  for (let i = 0; i < y.length; i++) y[i] *= inv;
  return storageFrom(x.dtype, y);
}

/** dy [N,C,P,Q] -> dx [N,C,H,W]: each input cell receives dy/(R·S) from every window that covers it. */
export function avgPool2dBackward(dy: Storage, xShape: Shape, p: Pool2dParams): Storage {
  const op = 'avgPool2dBackward';
  const d = poolDims(op, xShape, p);
  const dyd = input(op, 'dy', dy, d.N * d.C * d.P * d.Q);
  const dx = new Float64Array(numelOf(xShape));
  const inv = 1 / (d.R * d.S);
  forEachWindowCell(d, (yi, xi) => {
    dx[xi] += dyd[yi] * inv;
  });
  return storageFrom(dy.dtype, dx);
}
