/**
 * Evaluation: mean cross-entropy, accuracy, per-class accuracy and the confusion matrix of a model on a split, in eval
 * mode and without autograd. Used after every training epoch and by `resnet eval`.
 */
import type { Module } from '../nn/module';
import { Tensor, crossEntropy, noGrad, tidy } from '../tensor';
import type { Loader } from '../data/loader';

export interface EvalResult {
  n: number;
  loss: number;
  acc: number;
  perClassAcc: number[];
  /** confusion[true][predicted] counts */
  confusion: number[][];
}

export async function evaluate(model: Module, loader: Loader, numClasses: number): Promise<EvalResult> {
  const wasTraining = model.training;
  model.eval();
  const confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  let lossSum = 0;
  let n = 0;
  const be = model.backend;
  try {
    for await (const b of loader.batches(0)) {
      const { loss, logits } = noGrad(() => tidy(() => {
        const x = Tensor.fromArray(b.x, [b.n, 3, 32, 32], be);
        const out = model.forward(x);
        return { loss: crossEntropy(out, b.y).item(), logits: out.toArray() };
      }));
      lossSum += loss * b.n;
      n += b.n;
      for (let i = 0; i < b.n; i++) {
        confusion[b.y[i]][argmaxRow(logits, i, numClasses)]++;
      }
    }
  } finally {
    model.train(wasTraining);
  }
  const correct = confusion.reduce((s, row, i) => s + row[i], 0);
  const perClassAcc = confusion.map((row, i) => {
    const total = row.reduce((a, v) => a + v, 0);
    return total ? row[i] / total : NaN;
  });
  return { n, loss: n ? lossSum / n : NaN, acc: n ? correct / n : NaN, perClassAcc, confusion };
}

/** The predicted class of row i of row-major logits [N,C] (the first maximum, as torch.argmax). */
export function argmaxRow(logits: ArrayLike<number>, i: number, C: number): number {
  let best = 0;
  for (let c = 1; c < C; c++) if (logits[i * C + c] > logits[i * C + best]) best = c;
  return best;
}

/** The confusion matrix as a fixed-width table with per-class accuracy. */
export function formatConfusion(r: EvalResult, classes: readonly string[]): string {
  const w = Math.max(6, ...classes.map((c) => c.length)) + 1;
  const head = ''.padEnd(w) + classes.map((c) => c.slice(0, 6).padStart(7)).join('') + '   acc';
  const rows = r.confusion.map((row, i) =>
    classes[i].padEnd(w) + row.map((v) => String(v).padStart(7)).join('') + `  ${(r.perClassAcc[i] * 100).toFixed(1).padStart(5)}%`);
  return ['true \\ predicted', head, ...rows].join('\n');
}
