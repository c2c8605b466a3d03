/**
 * conv2d: x [N,C,H,W] * w [K,C,R,S] (+ b [K]) -> y [N,K,P,Q], zero padding, any stride (no groups, no dilation:
 * ResNet-18 needs neither). Backward: dx by the transposed convolution, dw and db by correlating x with dy.
 */
import { convOutputShape, type Conv2dParams } from '../../backend/backend';
import { makeResult, Tensor } from '../tensor';
import { expectRank, expectSameBackend, fmt } from './check';

export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
}

function pair(v: number | [number, number] | undefined, dflt: number): [number, number] {
  if (v === undefined) return [dflt, dflt];
  return typeof v === 'number' ? [v, v] : v;
}

export function conv2d(x: Tensor, w: Tensor, b: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  expectRank('conv2d', 'x', x, 4, '[N,C,H,W]');
  expectRank('conv2d', 'w', w, 4, '[K,C,R,S]');
  if (x.shape[1] !== w.shape[1]) {
    throw new Error(`conv2d: x has ${x.shape[1]} channels ${fmt(x.shape)} but w expects ${w.shape[1]} ${fmt(w.shape)}`);
  }
  if (b && (b.shape.length !== 1 || b.shape[0] !== w.shape[0])) {
    throw new Error(`conv2d: expected bias of shape [${w.shape[0]}], received ${fmt(b.shape)}`);
  }
  expectSameBackend('conv2d', ...(b ? [x, w, b] : [x, w]));
  const p: Conv2dParams = { stride: pair(opts.stride, 1), padding: pair(opts.padding, 0) };
  const yShape = convOutputShape(x.shape, w.shape, p);
  if (yShape[2] <= 0 || yShape[3] <= 0) {
    throw new Error(`conv2d: kernel ${fmt(w.shape)} does not fit input ${fmt(x.shape)} with padding ${p.padding}`);
  }
  const be = x.backend;
  const y = be.conv2d(x.storage, x.shape, w.storage, w.shape, b ? b.storage : null, p);
  const inputs = b ? [x, w, b] : [x, w];
  return makeResult('conv2d', y, yShape, be, inputs, (dy) => {
    const dx = x.requiresGrad ? new Tensor(be.conv2dBackwardData(dy.storage, w.storage, x.shape, w.shape, p), x.shape, be) : null;
    let dw: Tensor | null = null;
    let db: Tensor | null = null;
    if (w.requiresGrad || (b && b.requiresGrad)) {
      const r = be.conv2dBackwardWeights(dy.storage, x.storage, x.shape, w.shape, p, b !== null);
      dw = new Tensor(r.dw, w.shape, be);
      db = r.db ? new Tensor(r.db, [w.shape[0]], be) : null;
    }
    return b ? [dx, dw, db] : [dx, dw];
  });
}
