/**
 * The model factory: every command builds its model here, from a spec (`buildModel`) or from weights
 * (`modelFromWeights`: the spec their checkpoint recorded, else the one their shapes imply). The trainer, eval,
 * predict/serve, export, bench and the golden tests use it, so a run trained at any width or class count works
 * in every command.
 *
 * What it is not: a weights reader (src/interop/weights.ts reads files; this takes their state dict).
 */
import type { Backend, DType } from '../backend/backend';
import { describeLoad, firstFew } from '../nn/module';
import type { StateDict } from '../tensor/host';
import { ResNet } from './resnet';
import { type ModelSpec, checkSpec, describeSpec, inferSpec, stateDictProblems } from './spec';

export { SEED_SPEC, checkSpec, describeSpec, expectedEntries, guessSpec, inferSpec, stateDictProblems } from './spec';
export type { ModelSpec } from './spec';

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
 * shapes; otherwise inferred from the shapes (weights from PyTorch or safetensors, our checkpoints before the
 * spec was recorded). `where` (the file) opens every error.
 */
export function specForWeights(sd: StateDict, recorded: unknown, where: string): ModelSpec {
  if (recorded === undefined) {
    try {
      return inferSpec(sd);
    } catch (err) {
      throw new Error(`${where}: ${(err as Error).message.replace(/^inferSpec: /, '')}`, { cause: err });
    }
  }
  const spec = checkSpec(recorded, where);
  const problems = stateDictProblems(sd, spec);
  if (problems.length > 0) {
    throw new Error(`${where} records the model ${describeSpec(spec)}, but its weights do not fit it: ${firstFew(problems, '; ')}`);
  }
  return spec;
}

/** Builds the model of these weights (see specForWeights) and loads them into it, in eval mode. */
export function modelFromWeights(
  sd: StateDict, opts: BuildOptions & { recorded?: unknown; where: string },
): { model: ResNet; spec: ModelSpec } {
  const spec = specForWeights(sd, opts.recorded, opts.where);
  const model = buildModel(spec, opts);
  // non-strict only for the counters stateDictProblems allows to be missing (num_batches_tracked): they start at 0
  const fit = model.loadStateDict(sd, { strict: false });
  const missingFloats = fit.missing.filter((k) => !k.endsWith('.num_batches_tracked'));
  if (missingFloats.length || fit.unexpected.length || fit.mismatched.length) {
    model.dispose();
    throw new Error(`${opts.where} does not fit ${describeSpec(spec)}: ${describeLoad({ ...fit, missing: missingFloats })}`);
  }
  return { model: model.eval(), spec };
}
