/**
 * What a classification returns, and the arithmetic that turns a model's logits into it (softmax, arg-max,
 * top-k). Shared by `resnet predict`, `resnet serve` and the interactive loop, so that the same bytes give
 * bitwise-identical numbers on every path.
 *
 * What it is not: the model (src/models) or the image decoder (src/data); no I/O here.
 * Softmax is computed in float64 with the max subtracted first (the usual overflow guard), then arg-max over
 * the probabilities; ties go to the lower index, as torch.argmax does.
 */
import { className } from './classes';

export interface Prediction {
  /** arg-max class index */
  readonly index: number;
  /** English class name (the CIFAR-10 folder name) */
  readonly label: string;
  /** Chinese class name, as the seed prints it */
  readonly labelZh: string;
  /** softmax probability of `index` */
  readonly confidence: number;
  /** softmax probabilities of every class, in index order */
  readonly probs: number[];
  /** the model's raw outputs (float32 values), in index order */
  readonly logits: number[];
}

export interface RankedClass {
  readonly index: number;
  readonly label: string;
  readonly labelZh: string;
  readonly prob: number;
}

export function softmax(logits: ArrayLike<number>): number[] {
  if (logits.length === 0) throw new Error('softmax: expected at least one logit, received none');
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  if (!Number.isFinite(max)) {
    throw new Error(`softmax: expected finite logits, received a maximum of ${max}`);
  }
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

export function predictionFromLogits(logits: ArrayLike<number>): Prediction {
  for (let i = 0; i < logits.length; i++) {
    if (Number.isNaN(logits[i])) throw new Error(`predictionFromLogits: logit ${i} is NaN (the model produced no usable output)`);
  }
  return predictionFromProbabilities(softmax(logits), logits);
}

/**
 * A prediction from probabilities computed elsewhere (test-time augmentation's mean over views, src/data/tta.ts)
 * and the logits to report beside them (under TTA, the untouched view's). Arg-max over `probs`, ties to the lower
 * index, as predictionFromLogits.
 */
export function predictionFromProbabilities(probs: ArrayLike<number>, logits: ArrayLike<number>): Prediction {
  if (probs.length === 0 || probs.length !== logits.length) {
    throw new Error(`predictionFromProbabilities: expected as many probabilities as logits (at least one), received ${probs.length} and ${logits.length}`);
  }
  for (let i = 0; i < probs.length; i++) {
    if (Number.isNaN(probs[i])) throw new Error(`predictionFromProbabilities: probability ${i} is NaN (the model produced no usable output)`);
  }
  let index = 0;
  for (let i = 1; i < probs.length; i++) if (probs[i] > probs[index]) index = i;
  const name = className(index);
  return {
    index,
    label: name.en,
    labelZh: name.zh,
    confidence: probs[index],
    probs: Array.from(probs),
    logits: Array.from(logits),
  };
}

/** The k most probable classes, most probable first (k is clamped to the number of classes). */
export function topK(p: Prediction, k: number): RankedClass[] {
  if (!Number.isInteger(k) || k < 1) throw new Error(`topK: expected k to be a positive integer, received ${k}`);
  const order = p.probs.map((_, i) => i).sort((a, b) => p.probs[b] - p.probs[a] || a - b);
  return order.slice(0, k).map((i) => {
    const name = className(i);
    return { index: i, label: name.en, labelZh: name.zh, prob: p.probs[i] };
  });
}

/** The wire form of a prediction, used by `predict --json` and `POST /api/predict` alike. */
export interface PredictionJson {
  label: string;
  label_zh: string;
  index: number;
  confidence: number;
  probs: number[];
  logits: number[];
}

export function predictionToJson(p: Prediction): PredictionJson {
  return {
    label: p.label,
    label_zh: p.labelZh,
    index: p.index,
    confidence: p.confidence,
    probs: p.probs,
    logits: p.logits,
  };
}
