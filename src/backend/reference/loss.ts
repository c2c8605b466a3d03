/**
 * Reference backend: mean cross-entropy of logits against integer targets, with label smoothing.
 *
 * What it is: PyTorch's F.cross_entropy(logits, targets, label_smoothing=ε, reduction='mean'):
 * loss = mean_n −Σ_c t[n,c]·log_softmax(x)[n,c], with t = (1−ε)·onehot + ε/C; its gradient with respect to
 * the logits is (softmax(x) − t)/N. What it is not: class weights, ignore_index or other reductions.
 * References: PyTorch CrossEntropyLoss docs; Szegedy et al. 2016 (arXiv:1512.00567) §7 for label smoothing.
 */
import type { Shape, Storage } from '../backend';
import { expectShape, inputOf, storageFrom } from './storage';
import { logSoftmaxRow } from './softmax';

function checkTargets(op: string, targets: Int32Array, N: number, C: number, eps: number): void {
  if (!(targets instanceof Int32Array)) {
    throw new Error(`${op}: expected targets as an Int32Array, received ${Object.prototype.toString.call(targets)}`);
  }
  if (targets.length !== N) throw new Error(`${op}: expected ${N} targets (one per row), received ${targets.length}`);
  for (let n = 0; n < N; n++) {
    const t = targets[n];
    if (t < 0 || t >= C) throw new Error(`${op}: target ${t} at index ${n} is out of range [0, ${C})`);
  }
  if (!(eps >= 0 && eps <= 1)) throw new Error(`${op}: expected labelSmoothing in [0,1], received ${eps}`);
}

/** logits [N,C] -> { loss (a JS number), probs [N,C] = softmax(logits) } */
export function crossEntropy(
  logits: Storage, shape: Shape, targets: Int32Array, labelSmoothing: number,
): { loss: number; probs: Storage } {
  const op = 'crossEntropy';
  expectShape(op, 'logits', shape, 'N,C');
  const [N, C] = shape;
  const x = inputOf(op, 'logits', logits, shape);
  checkTargets(op, targets, N, C, labelSmoothing);
  const logp = new Float64Array(N * C);
  let total = 0;
  for (let n = 0; n < N; n++) {
    logSoftmaxRow(logp, x, n * C, C);
    let rowSum = 0;
    for (let c = 0; c < C; c++) rowSum += logp[n * C + c];
    // −Σ_c t_c·logp_c with t = (1−ε)·onehot + ε/C
    total += -(1 - labelSmoothing) * logp[n * C + targets[n]] - (labelSmoothing / C) * rowSum;
  }
  const probs = logp.map(Math.exp);
  return { loss: total / N, probs: storageFrom(logits.dtype, probs) };
}

/** probs [N,C] -> dlogits [N,C] = (probs − t)/N · gradOutput */
export function crossEntropyBackward(
  probs: Storage, shape: Shape, targets: Int32Array, labelSmoothing: number, gradOutput: number,
): Storage {
  const op = 'crossEntropyBackward';
  expectShape(op, 'probs', shape, 'N,C');
  const [N, C] = shape;
  const pd = inputOf(op, 'probs', probs, shape);
  checkTargets(op, targets, N, C, labelSmoothing);
  if (typeof gradOutput !== 'number') throw new Error(`${op}: expected gradOutput as a number, received ${typeof gradOutput}`);
  const dx = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const t = (c === targets[n] ? 1 - labelSmoothing : 0) + labelSmoothing / C;
      dx[n * C + c] = ((pd[n * C + c] - t) / N) * gradOutput;
    }
  }
  return storageFrom(probs.dtype, dx);
}
