/**
 * The architecture spec that travels with a model's weights: `{ arch, width, numClasses, inputSize }`, enough to
 * build the model again. Our checkpoints and run.json record it; weights from elsewhere (.pth, .safetensors) get it
 * inferred from their shapes alone (`inferSpec`).
 *
 * What it is not: a model builder (src/models/index.ts builds from a spec) and not a file reader. The seed's
 * PyTorch names and the stage plan come from ./resnet.ts.
 */
import type { StateDict } from '../tensor/host';
import { describeLoad, firstFew } from '../nn/module';
import { hasProjection, resnet18Stages } from './resnet';

export interface ModelSpec {
  /** the only architecture so far: the seed's CIFAR ResNet-18 */
  readonly arch: 'resnet18';
  /** channels of the first stage (64 = the seed's); stages use w, 2w, 4w, 8w */
  readonly width: number;
  readonly numClasses: number;
  /** height = width of the input images; the CIFAR stem pools a 4x4 map, so ResNet-18 takes 32 */
  readonly inputSize: number;
}

export const SEED_SPEC: ModelSpec = Object.freeze({ arch: 'resnet18', width: 64, numClasses: 10, inputSize: 32 });

/** The only input size the seed's ResNet-18 takes: its head averages the 4x4 map of a 32x32 input. */
export const RESNET18_INPUT_SIZE = 32;

const posInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1;

/** Checks a spec read from a file or built from flags; `where` names its source in the error. */
export function checkSpec(spec: unknown, where: string): ModelSpec {
  const s = (spec ?? {}) as Record<string, unknown>;
  const problems: string[] = [];
  if (s.arch !== 'resnet18') problems.push(`arch: expected 'resnet18', received ${JSON.stringify(s.arch)}`);
  for (const k of ['width', 'numClasses'] as const) {
    if (!posInt(s[k])) problems.push(`${k}: expected a positive integer, received ${JSON.stringify(s[k])}`);
  }
  if (s.inputSize !== RESNET18_INPUT_SIZE) {
    problems.push(`inputSize: expected ${RESNET18_INPUT_SIZE} (the CIFAR stem), received ${JSON.stringify(s.inputSize)}`);
  }
  if (problems.length > 0) throw new Error(`model spec of ${where}: ${problems.join('; ')}`);
  return { arch: 'resnet18', width: s.width as number, numClasses: s.numClasses as number, inputSize: RESNET18_INPUT_SIZE };
}

/** One state-dict entry the model has: a float tensor of this shape, or an int64 counter (num_batches_tracked). */
export interface ExpectedEntry { key: string; shape: number[]; counter: boolean }

function conv(p: string, k: number, c: number, r: number): ExpectedEntry[] {
  return [{ key: `${p}.weight`, shape: [k, c, r, r], counter: false }];
}

function batchNorm(p: string, k: number): ExpectedEntry[] {
  const floats = ['weight', 'bias', 'running_mean', 'running_var'].map((n) => ({ key: `${p}.${n}`, shape: [k], counter: false }));
  return [...floats, { key: `${p}.num_batches_tracked`, shape: [], counter: true }];
}

/** Every key of the model's state dict with its shape, in PyTorch's order (what Module.stateDict() lists). */
export function expectedEntries(spec: ModelSpec): ExpectedEntry[] {
  const w = spec.width;
  const out = [...conv('conv1.0', w, 3, 3), ...batchNorm('conv1.1', w)];
  for (const { name, blocks } of resnet18Stages(w)) {
    blocks.forEach((b, i) => {
      const p = `${name}.${i}`;
      out.push(...conv(`${p}.left.0`, b.outChannels, b.inChannels, 3), ...batchNorm(`${p}.left.1`, b.outChannels));
      out.push(...conv(`${p}.left.3`, b.outChannels, b.outChannels, 3), ...batchNorm(`${p}.left.4`, b.outChannels));
      if (hasProjection(b)) {
        out.push(...conv(`${p}.shortcut.0`, b.outChannels, b.inChannels, 1), ...batchNorm(`${p}.shortcut.1`, b.outChannels));
      }
    });
  }
  out.push({ key: 'fc.weight', shape: [spec.numClasses, 8 * w], counter: false });
  out.push({ key: 'fc.bias', shape: [spec.numClasses], counter: false });
  return out;
}

/** How `sd` differs from the model of `spec`, as Module.loadStateDict lists it (mis-shaped: `K: expected [..], received [..]`). */
export interface SpecFit {
  missing: string[];
  unexpected: string[];
  mismatched: string[];
  /** the same in one line per problem, for the ONNX writer: `missing K`, `K: expected float32 [..], received int64 [..]`, `unexpected K, L` */
  lines: string[];
}

/**
 * What keeps `sd` from being the model of `spec`, in the model's key order; all lists empty when it fits. A missing
 * num_batches_tracked is no problem: PyTorch before 0.4.1 did not save it and inference does not use it.
 */
export function fitToSpec(sd: StateDict, spec: ModelSpec): SpecFit {
  const fit: SpecFit = { missing: [], unexpected: [], mismatched: [], lines: [] };
  const known = new Set<string>();
  for (const e of expectedEntries(spec)) {
    known.add(e.key);
    const t = sd.get(e.key);
    if (t === undefined) {
      if (!e.counter) {
        fit.missing.push(e.key);
        fit.lines.push(`missing ${e.key}`);
      }
    } else if (e.counter ? t.data.length !== 1 : t.dtype !== 'float32' || !sameShape(t.shape, e.shape)) {
      const want = e.counter ? 'a scalar' : `float32 [${e.shape.join(',')}]`;
      const got = `${t.dtype} [${t.shape.join(',')}]`;
      fit.mismatched.push(t.dtype === 'float32' ? `${e.key}: expected [${e.shape.join(',')}], received [${t.shape.join(',')}]` : `${e.key}: expected ${want}, received ${got}`);
      fit.lines.push(`${e.key}: expected ${want}, received ${got}`);
    }
  }
  fit.unexpected = [...sd.keys()].filter((k) => !known.has(k));
  if (fit.unexpected.length > 0) fit.lines.push(`unexpected ${fit.unexpected.join(', ')}`);
  return fit;
}

const fits = (f: SpecFit): boolean => f.lines.length === 0;

const shapeOf = (sd: StateDict, key: string): string => {
  const t = sd.get(key);
  return t === undefined ? 'none' : `${t.dtype} [${t.shape.join(',')}]`;
};

/**
 * The spec that conv1.0.weight [w,3,3,3] and fc.weight [classes,8w] point to, or why there is none; nothing else
 * is checked (fitToSpec does that).
 */
export function guessSpec(sd: StateDict): ModelSpec | string {
  const c = sd.get('conv1.0.weight')?.shape;
  const f = sd.get('fc.weight')?.shape;
  const width = c !== undefined && c.length === 4 && c[0] >= 1 && c[1] === 3 && c[2] === 3 && c[3] === 3 ? c[0] : 0;
  if (width > 0 && f !== undefined && f.length === 2 && f[0] >= 1 && f[1] === 8 * width) {
    return { arch: 'resnet18', width, numClasses: f[0], inputSize: RESNET18_INPUT_SIZE };
  }
  const want = 'expected a ResNet-18 state dict with fc.weight of shape [classes, 8*width] and conv1.0.weight of shape [width,3,3,3]';
  if (c === undefined && f === undefined) return `${want}, received keys ${firstFew([...sd.keys()], ', ') || '(none)'}`;
  return `${want}, received conv1.0.weight ${shapeOf(sd, 'conv1.0.weight')} and fc.weight ${shapeOf(sd, 'fc.weight')}`;
}

/**
 * Infers the spec from a state dict's shapes alone: width from conv1.0.weight, classes from fc.weight, and every
 * other key checked against them. A dict that does not fit throws, naming the first few keys and a count.
 */
export function inferSpec(sd: StateDict): ModelSpec {
  const spec = guessSpec(sd);
  if (typeof spec === 'string') throw new Error(`inferSpec: ${spec}`);
  const fit = fitToSpec(sd, spec);
  if (!fits(fit)) {
    throw new Error(`inferSpec: the weights do not fit ResNet-18 at width ${spec.width} with ${spec.numClasses} classes ` +
      `(from conv1.0.weight and fc.weight): ${describeLoad(fit)}`);
  }
  return spec;
}

/** "resnet18 (width 16, 10 classes, 32x32 input)" */
export function describeSpec(s: ModelSpec): string {
  return `${s.arch} (width ${s.width}, ${s.numClasses} classes, ${s.inputSize}x${s.inputSize} input)`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
