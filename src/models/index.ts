/**
 * The model factory: every command builds its model here, from a spec (`buildModel`) or from weights
 * (`modelFromWeights`: the spec their checkpoint recorded, else the one their shapes imply). The trainer, eval,
 * predict/serve, export, bench and the golden tests use it, so a run trained at any width or class count works
 * in every command.
 *
 * What it is not: a weights reader (src/interop/weights.ts reads files; this takes their state dict).
 */
import type { Backend, DType } from '../backend/backend';
import { describeLoad } from '../nn/module';
import type { StateDict } from '../tensor/host';
import { ResNet } from './resnet';
import { type ModelSpec, type SpecFit, checkSpec, describeSpec, fitToSpec, guessSpec } from './spec';

export { RESNET18_INPUT_SIZE, SEED_SPEC, checkSpec, describeSpec, expectedEntries, fitToSpec, guessSpec, inferSpec } from './spec';
export type { ExpectedEntry, ModelSpec, SpecFit } from './spec';

export interface BuildOptions {
  /** seed of the initialisation generator (default 0) */
  seed?: number;
  backend?: Backend;
  dtype?: DType;
}

/** A freshly initialised model of this spec (checked first: a bad spec throws naming its field). */
export function buildModel(spec: ModelSpec, opts: BuildOptions = {}): ResNet {
  const s = checkSpec(spec, 'buildModel');
  return new ResNet({ numClasses: s.numClasses, baseWidth: s.width, seed: opts.seed, backend: opts.backend, dtype: opts.dtype });
}

/**
 * The spec of these weights: `recorded` (what our checkpoints store) when there is one, checked against the
 * shapes; otherwise inferred from the shapes (weights from PyTorch or safetensors, our checkpoints from before the
 * spec was recorded). `where` (e.g. "--weights FILE") opens every error; the keys that do not fit are listed as
 * Module.loadStateDict lists them: the first few and a count.
 */
export function specForWeights(sd: StateDict, recorded: unknown, where: string): ModelSpec {
  let spec: ModelSpec;
  if (recorded === undefined) {
    const guess = guessSpec(sd);
    if (typeof guess === 'string') throw new Error(`${where}: ${guess}`);
    spec = guess;
  } else {
    spec = checkSpec(recorded, where);
  }
  const fit = fitToSpec(sd, spec);
  if (fit.lines.length === 0) return spec;
  throw new Error(recorded === undefined
    ? `${where} does not fit ResNet-18: ${describeLoad(fit)}`
    : `${where} records the model ${describeSpec(spec)}, but its weights do not fit it: ${describeLoad(fit)}`);
}

/** Builds the model of these weights (see specForWeights) and loads them into it, in eval mode. */
export function modelFromWeights(
  sd: StateDict, opts: BuildOptions & { recorded?: unknown; where: string },
): { model: ResNet; spec: ModelSpec } {
  const spec = specForWeights(sd, opts.recorded, opts.where);
  const model = buildModel(spec, opts);
  // not strict: fitToSpec allows a missing num_batches_tracked (it then starts at 0); everything else was checked
  const fit = model.loadStateDict(sd, { strict: false });
  const unfit: SpecFit = { ...fit, missing: fit.missing.filter((k) => !k.endsWith('.num_batches_tracked')), lines: [] };
  if (unfit.missing.length || unfit.unexpected.length || unfit.mismatched.length) {
    model.dispose();
    throw new Error(`${opts.where} does not fit ${describeSpec(spec)}: ${describeLoad(unfit)}`);
  }
  return { model: model.eval(), spec };
}
