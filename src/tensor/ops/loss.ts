/**
 * softmax, logSoftmax over the last axis of [N,C], and the mean cross-entropy loss with optional label smoothing
 * (Szegedy et al. 2016; PyTorch's nn.CrossEntropyLoss(label_smoothing=ε)). The loss is computed from a stable
 * log-sum-exp, so logits of ±1e4 still give a finite loss.
 */
import { makeResult, Tensor } from '../tensor';
import { expectRank, fmt } from './check';

export function softmax(x: Tensor): Tensor {
  expectRank('softmax', 'x', x, 2, '[N,C]');
  const be = x.backend;
  const y = be.softmax(x.storage, x.shape);
  const out: Tensor = makeResult('softmax', y, x.shape, be, [x], (dy) => [
    new Tensor(be.softmaxBackward(dy.storage, out.storage, x.shape), x.shape, be),
  ]);
  return out;
}

export function logSoftmax(x: Tensor): Tensor {
  expectRank('logSoftmax', 'x', x, 2, '[N,C]');
  const be = x.backend;
  const y = be.logSoftmax(x.storage, x.shape);
  const out: Tensor = makeResult('logSoftmax', y, x.shape, be, [x], (dy) => [
    new Tensor(be.logSoftmaxBackward(dy.storage, out.storage, x.shape), x.shape, be),
  ]);
  return out;
}

export interface CrossEntropyOptions {
  labelSmoothing?: number;
}

/** Mean cross-entropy of logits [N,C] against class indices; returns a scalar tensor (shape []). */
export function crossEntropy(logits: Tensor, targets: Int32Array | readonly number[], opts: CrossEntropyOptions = {}): Tensor {
  expectRank('crossEntropy', 'logits', logits, 2, '[N,C]');
  const [N, C] = logits.shape;
  const t = targets instanceof Int32Array ? targets : Int32Array.from(targets);
  if (t.length !== N) throw new Error(`crossEntropy: expected ${N} targets for logits ${fmt(logits.shape)}, received ${t.length}`);
  for (let i = 0; i < N; i++) {
    if (!(t[i] >= 0 && t[i] < C)) throw new Error(`crossEntropy: target ${t[i]} at index ${i} is outside [0, ${C})`);
  }
  const ls = opts.labelSmoothing ?? 0;
  if (!(ls >= 0 && ls <= 1)) throw new Error(`crossEntropy: labelSmoothing must be in [0, 1], received ${ls}`);
  const be = logits.backend;
  const { loss, probs } = be.crossEntropy(logits.storage, logits.shape, t, ls);
  const arr = logits.dtype === 'float64' ? Float64Array.of(loss) : Float32Array.of(loss);
  return makeResult('crossEntropy', be.fromArray(arr, []), [], be, [logits], (dy) => [
    new Tensor(be.crossEntropyBackward(probs, logits.shape, t, ls, dy.toArray()[0]), logits.shape, be),
  ], () => be.dispose(probs));
}
