/**
 * `resnet eval`'s evaluation: mean cross-entropy, accuracy, per-class accuracy and the confusion matrix of trained
 * weights on a split, run through the folded inference graph (src/models/inference.ts: batch norm folded into the
 * convolutions, add and ReLU fused) rather than the training graph in eval mode. With test-time augmentation
 * (src/data/tta.ts) each batch runs once per view: the predicted class is the arg-max of the views' mean softmax
 * and the loss is the cross-entropy of that mean, −log((1/V)·Σ_v softmax_v[y]), summed in float64 from the views'
 * logits (a log-sum-exp, so a confident mistake gives a large finite loss, not −log of an underflowed 0).
 *
 * What it is not: the trainer's per-epoch evaluation (src/train/evaluate.ts runs the model it is training); its
 * result has the same fields, and without TTA the same values up to float rounding (test/predict/evaluation.test.ts).
 */
import type { Loader } from '../data/loader';
import { IMAGE_SIZE } from '../data/normalize';
import { ttaProbabilities, type TtaMode } from '../data/tta';

/** What runs the model: n normalised images [n,3,H,W] in, logits [n, numClasses] out (InferenceGraph is one). */
export interface LogitsModel {
  readonly numClasses: number;
  forward(x: Float32Array, shape: readonly number[]): Float32Array;
}

export interface EvaluationResult {
  n: number;
  loss: number;
  acc: number;
  /** per class: correct / images of that class (NaN for a class without images) */
  perClassAcc: number[];
  /** confusion[true][predicted] counts */
  confusion: number[][];
}

export interface EvaluateOptions {
  /** test-time augmentation (default off: one forward pass per batch) */
  readonly tta?: TtaMode;
}

/** The first maximum of row i of row-major [N, C] values (ties to the lower index, as torch.argmax). */
function argmaxRow(v: ArrayLike<number>, i: number, C: number): number {
  let best = 0;
  for (let c = 1; c < C; c++) if (v[i * C + c] > v[i * C + best]) best = c;
  return best;
}

/** log Σ_c exp(logits[i, c]) in float64, the max subtracted first. */
function logSumExpRow(logits: ArrayLike<number>, i: number, C: number): number {
  let max = -Infinity;
  for (let c = 0; c < C; c++) max = Math.max(max, logits[i * C + c]);
  let sum = 0;
  for (let c = 0; c < C; c++) sum += Math.exp(logits[i * C + c] - max);
  return max + Math.log(sum);
}

/**
 * −log of the mean over the views of softmax_v[i, y]: with a_v = log softmax_v[i, y], that is
 * −(log Σ_v exp(a_v) − log V). One view gives the plain cross-entropy, logsumexp(logits) − logits[y].
 */
function rowLoss(viewLogits: readonly Float32Array[], i: number, y: number, C: number): number {
  const a = viewLogits.map((l) => l[i * C + y] - logSumExpRow(l, i, C));
  const max = Math.max(...a);
  const sum = a.reduce((s, v) => s + Math.exp(v - max), 0);
  return -(max + Math.log(sum) - Math.log(a.length));
}

/** Predicted classes and per-image losses of one batch (the loader's [n,3,32,32] images, labels y). */
function scoreBatch(model: LogitsModel, x: Float32Array, y: Int32Array, n: number, tta: TtaMode): { pred: number[]; loss: number[] } {
  const C = model.numClasses;
  const shape = [n, 3, IMAGE_SIZE, IMAGE_SIZE];
  for (let i = 0; i < n; i++) if (!(y[i] >= 0 && y[i] < C)) throw new Error(`eval: label ${y[i]} is outside the model's classes [0, ${C})`);
  const viewLogits: Float32Array[] = [];
  const forward = (view: Float32Array): Float32Array => {
    const logits = model.forward(view, shape);
    if (logits.length !== n * C) throw new Error(`eval: expected ${n * C} logits from the model (${n} x ${C}), received ${logits.length}`);
    viewLogits.push(logits);
    return logits;
  };
  // off: the arg-max of the logits themselves (softmax is monotone; this avoids ties its rounding could make)
  const scores = tta === 'off' ? forward(x) : ttaProbabilities(forward, x, shape, C, tta);
  const pred: number[] = [];
  const loss: number[] = [];
  for (let i = 0; i < n; i++) {
    pred.push(argmaxRow(scores, i, C));
    loss.push(rowLoss(viewLogits, i, y[i], C));
  }
  return { pred, loss };
}

/** Evaluates `model` on every batch of `loader` (epoch 0: the loader's order, no augmentation of its own). */
export async function evaluateModel(model: LogitsModel, loader: Loader, opts: EvaluateOptions = {}): Promise<EvaluationResult> {
  const C = model.numClasses;
  const tta = opts.tta ?? 'off';
  const confusion = Array.from({ length: C }, () => new Array<number>(C).fill(0));
  let lossSum = 0;
  let n = 0;
  for await (const b of loader.batches(0)) {
    const r = scoreBatch(model, b.x, b.y, b.n, tta);
    for (let i = 0; i < b.n; i++) {
      confusion[b.y[i]][r.pred[i]]++;
      lossSum += r.loss[i];
    }
    n += b.n;
  }
  const correct = confusion.reduce((s, row, i) => s + row[i], 0);
  const perClassAcc = confusion.map((row, i) => {
    const total = row.reduce((a, v) => a + v, 0);
    return total ? row[i] / total : NaN;
  });
  return { n, loss: n ? lossSum / n : NaN, acc: n ? correct / n : NaN, perClassAcc, confusion };
}
