/**
 * The classifier behind `resnet predict` and `resnet serve`: weights in, one image's bytes in, a Prediction out.
 * It composes the public pieces of the engine: loadWeights (src/interop) → modelFromWeights (src/models: the
 * weights' spec, the model built and loaded) → preprocessForModel (src/data: RGB, resize to 32x32, the seed's
 * normalisation) → the folded inference graph (src/models/inference.ts: the eval-mode model with batch norm folded
 * into the convolutions and the residual add and ReLU fused into them) → softmax (src/predict/prediction.ts).
 * With test-time augmentation (`tta`: flip, flip-shift; src/data/tta.ts) every input runs once per view and its
 * probabilities are the mean of the views' softmax; the logits reported are the untouched view's.
 *
 * What it is not: a batch evaluator (`resnet eval`'s accuracy over a test set is src/predict/evaluation.ts, on the same
 * inference graph) and not a server.
 * One image runs alone (batch 1, classifyInput/classifyBytes): the server and `resnet predict --batch-size 1`
 * then give bitwise-identical outputs for the same bytes. classifyBatch runs many in one forward pass for
 * folder prediction; its numbers agree to float32 rounding, not bit for bit (see classifyBatch).
 */
import { DecodeOptions, preprocessForModel } from '../data';
import { checkTtaMode, ttaProbabilities, type TtaMode } from '../data/tta';
import { loadWeights } from '../interop/weights';
import { InferenceGraph } from '../models/inference';
import { modelFromWeights, type ModelSpec } from '../models';
import { useBackend } from '../backend';
import type { Precision } from '../backend/backend';
import { applyPrecision } from '../backend/precision';
import { ClassName, classNames } from './classes';
import { Prediction, predictionFromLogits, predictionFromProbabilities } from './prediction';

/** The model's input: one RGB image, 32x32, normalised. */
export const INPUT_SHAPE: readonly number[] = Object.freeze([1, 3, 32, 32]);

export interface ModelInfo {
  readonly arch: 'resnet18';
  /** the architecture spec the weights recorded or implied (width, classes, input size) */
  readonly spec: ModelSpec;
  /** fp32, or bf16 mixed precision (convolutions and linear in bf16) */
  readonly precision: Precision;
  /** test-time augmentation: off (one forward pass), flip (2 views) or flip-shift (6 views) */
  readonly tta: TtaMode;
  readonly numClasses: number;
  readonly classes: readonly ClassName[];
  readonly inputShape: readonly number[];
  /** the compute backend that runs the model (native or reference) */
  readonly backend: string;
  readonly weights: {
    readonly path: string;
    readonly format: string;
    readonly notes: readonly string[];
  };
}

export interface Classifier {
  readonly info: ModelInfo;
  /** Decodes and classifies one encoded image (any format src/data decodes). Rejects with ImageDecodeError. */
  classifyBytes(bytes: Uint8Array, opts?: DecodeOptions): Promise<Prediction>;
  /** Classifies an already preprocessed input of INPUT_SHAPE. */
  classifyInput(x: Float32Array): Prediction;
  /**
   * Classifies n preprocessed inputs packed one after another ([n,3,32,32]) in one forward pass; predictions
   * in input order. Not bitwise equal to classifyInput on each: convolution kernels are chosen per batch
   * size and sum in different orders (within 1e-5 of the largest logit; equal under RESNET_CONV_ALGO=deterministic).
   */
  classifyBatch(x: Float32Array, n: number): Prediction[];
}

export interface LoadClassifierOptions {
  /** native | reference | auto (default: RESNET_BACKEND, else auto) */
  readonly backend?: string;
  /** fp32 (default), bf16 or auto (bf16 where the CPU has it): src/backend/precision.ts */
  readonly precision?: string;
  /** test-time augmentation, src/data/tta.ts: off (default), flip or flip-shift */
  readonly tta?: TtaMode;
  /** a checkpoint holding a moving average of the weights: use the average (true, the default) or the raw weights */
  readonly ema?: boolean;
}

/**
 * Loads weights (our .ckpt checkpoints, run folders, and what the interop layer reads: .pth, .safetensors)
 * into a ResNet-18 in eval mode, built by the model factory from the spec a checkpoint recorded or, for other
 * files, the one their shapes imply (width from conv1.0.weight, classes from fc.weight).
 */
export async function loadClassifier(weights: string, opts: LoadClassifierOptions = {}): Promise<Classifier> {
  const backend = useBackend(opts.backend);
  const precision = applyPrecision(opts.precision ?? 'fp32', backend);
  const tta = checkTtaMode(opts.tta ?? 'off');
  const loaded = await loadWeights(weights, { ema: opts.ema });
  // the spec a checkpoint recorded, else the one the shapes imply: a run of any width or class count loads
  const { model, spec } = modelFromWeights(loaded.stateDict, { recorded: loaded.spec, where: `--weights ${weights}`, backend });
  const numClasses = spec.numClasses;
  // predictions run the folded inference graph (batch norm in the convolutions, add and ReLU fused): the eval-mode
  // model's logits within 1e-4 (test/models/inference.test.ts), one kernel per convolution
  const graph = InferenceGraph.fromStateDict(model.stateDict(), backend);
  model.dispose();

  const info: ModelInfo = {
    arch: spec.arch,
    spec,
    numClasses,
    classes: classNames(numClasses),
    inputShape: INPUT_SHAPE,
    precision,
    tta,
    backend: backend.name,
    weights: { path: loaded.path, format: String(loaded.format), notes: [...loaded.notes] },
  };

  // n inputs [n,3,32,32] in, one prediction per input; `what` names the caller in errors
  const run = (x: Float32Array, n: number, what: string): Prediction[] => {
    const shape = [n, ...INPUT_SHAPE.slice(1)];
    const forward = (view: Float32Array): Float32Array => {
      const logits = graph.forward(view, shape);
      if (logits.length !== n * numClasses) {
        throw new Error(`${what}: expected ${n * numClasses} logits from the model (${n} x ${numClasses}), received ${logits.length}`);
      }
      return logits;
    };
    const row = (a: Float32Array, i: number): Float32Array => a.subarray(i * numClasses, (i + 1) * numClasses);
    if (tta === 'off') {
      const logits = forward(x);
      return Array.from({ length: n }, (_, i) => predictionFromLogits(row(logits, i)));
    }
    // ttaViews puts the untouched input first: its logits are the ones reported
    const viewLogits: Float32Array[] = [];
    const probs = ttaProbabilities((view) => {
      viewLogits.push(forward(view));
      return viewLogits[viewLogits.length - 1];
    }, x, shape, numClasses, tta);
    return Array.from({ length: n }, (_, i) => predictionFromProbabilities(row(probs, i), row(viewLogits[0], i)));
  };

  const classifyInput = (x: Float32Array): Prediction => {
    const want = INPUT_SHAPE.reduce((a, b) => a * b, 1);
    if (x.length !== want) {
      throw new Error(`classify: expected a preprocessed input of ${want} values [${INPUT_SHAPE.join(',')}], received ${x.length}`);
    }
    return run(x, 1, 'classify')[0];
  };

  const classifyBatch = (x: Float32Array, n: number): Prediction[] => {
    const per = INPUT_SHAPE.reduce((a, b) => a * b, 1);
    if (!Number.isInteger(n) || n < 0 || x.length !== n * per) {
      throw new Error(`classifyBatch: expected n preprocessed inputs of ${per} values each ([n,${INPUT_SHAPE.slice(1).join(',')}]), received ${x.length} values for n = ${n}`);
    }
    if (n === 0) return [];
    return run(x, n, 'classifyBatch');
  };

  return {
    info,
    classifyInput,
    classifyBatch,
    async classifyBytes(bytes: Uint8Array, decodeOpts?: DecodeOptions): Promise<Prediction> {
      return classifyInput(await preprocessForModel(bytes, decodeOpts));
    },
  };
}
