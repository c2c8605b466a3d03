/**
 * Deterministic values shared by the golden fixtures and the tests that read them.
 *
 * The golden file (test/fixtures/golden/resnet18.safetensors, made by scripts/fixtures/make_golden.py) does not
 * store the 11.17M initial weights of ResNet-18: both sides compute them from the same formula instead.
 * `fixtureUniform(stream, n)[i] = hashSeed(stream, i) / 2^32 * 2 - 1`, and each state_dict entry is a simple
 * float64 expression of it, rounded once to float32. Every step is an exactly rounded IEEE operation in the same
 * order in Python (numpy) and here, so the two agree bit for bit; the test beside this file checks it.
 *
 * What it is not: an initialisation scheme for training (the scales are only roughly Kaiming-like), nor the model
 * itself: `fixtureKeyShapes` lists the seed's state_dict keys and shapes so that the tests do not depend on
 * src/models.
 *
 * References: src/models/resnet.ts (the seed's model and its state_dict keys); src/util/rng.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSafetensorsFile } from '../../src/interop/safetensors';
import { HostTensor, StateDict, hostNumel } from '../../src/tensor/host';
import { hashSeed } from '../../src/util/rng';

/** value_i = hashSeed(stream, i) / 2^32 * 2 - 1, in [-1, 1); exact in float64. */
export function fixtureUniform(stream: number, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (hashSeed(stream, i) / 4294967296) * 2 - 1;
  return out;
}

/** What a state_dict entry is, which decides the formula of its fixture value. */
export type FixtureKeyKind =
  | 'conv.weight'
  | 'linear.weight'
  | 'linear.bias'
  | 'bn.weight'
  | 'bn.bias'
  | 'bn.running_mean'
  | 'bn.running_var'
  | 'bn.num_batches_tracked';

export interface FixtureKey {
  key: string;
  shape: number[];
  kind: FixtureKeyKind;
  /** true for parameters (trained, have gradients), false for BN buffers */
  parameter: boolean;
}

/** fan_in of a conv/linear weight or of a linear bias, from the owning layer's weight shape. */
function fanIn(shape: readonly number[]): number {
  return hostNumel(shape.slice(1));
}

/** The seed's ResNet-18 state_dict keys and shapes, in PyTorch's state_dict order. */
export function fixtureKeyShapes(numClasses = 10): FixtureKey[] {
  const keys: FixtureKey[] = [];
  const conv = (prefix: string, k: number, c: number, r: number): void => {
    keys.push({ key: `${prefix}.weight`, shape: [k, c, r, r], kind: 'conv.weight', parameter: true });
  };
  const bn = (prefix: string, c: number): void => {
    keys.push({ key: `${prefix}.weight`, shape: [c], kind: 'bn.weight', parameter: true });
    keys.push({ key: `${prefix}.bias`, shape: [c], kind: 'bn.bias', parameter: true });
    keys.push({ key: `${prefix}.running_mean`, shape: [c], kind: 'bn.running_mean', parameter: false });
    keys.push({ key: `${prefix}.running_var`, shape: [c], kind: 'bn.running_var', parameter: false });
    keys.push({ key: `${prefix}.num_batches_tracked`, shape: [], kind: 'bn.num_batches_tracked', parameter: false });
  };
  conv('conv1.0', 64, 3, 3);
  bn('conv1.1', 64);
  let c = 64;
  const stages: Array<[number, number]> = [[64, 1], [128, 2], [256, 2], [512, 2]];
  stages.forEach(([k, stride], s) => {
    for (let b = 0; b < 2; b++) {
      const p = `layer${s + 1}.${b}`;
      conv(`${p}.left.0`, k, c, 3);
      bn(`${p}.left.1`, k);
      conv(`${p}.left.3`, k, k, 3);
      bn(`${p}.left.4`, k);
      if ((b === 0 ? stride : 1) !== 1 || c !== k) {
        conv(`${p}.shortcut.0`, k, c, 1);
        bn(`${p}.shortcut.1`, k);
      }
      c = k;
    }
  });
  keys.push({ key: 'fc.weight', shape: [numClasses, 512], kind: 'linear.weight', parameter: true });
  keys.push({ key: 'fc.bias', shape: [numClasses], kind: 'linear.bias', parameter: true });
  return keys;
}

/** The float64 value of one entry before rounding to float32 (see the rule in make_golden.py). */
function entryValues(kind: FixtureKeyKind, u: Float64Array, fan: number): Float64Array {
  const out = new Float64Array(u.length);
  const s = Math.sqrt(fan);
  for (let i = 0; i < u.length; i++) {
    const v = u[i];
    switch (kind) {
      case 'conv.weight':
      case 'linear.weight':
      case 'linear.bias':
        out[i] = v / s;
        break;
      case 'bn.weight':
        out[i] = 1 + 0.25 * v;
        break;
      case 'bn.bias':
      case 'bn.running_mean':
        out[i] = 0.1 * v;
        break;
      case 'bn.running_var':
        out[i] = 1 + 0.25 * (v + 1);
        break;
      case 'bn.num_batches_tracked':
        out[i] = 0;
        break;
    }
  }
  return out;
}

/**
 * The fixture's initial state dict: the j-th key (0-based) draws u = fixtureUniform(j + 1, numel) and maps it by
 * its kind; float32 everywhere except num_batches_tracked (int64 zero).
 */
export function fixtureStateDict(numClasses = 10): StateDict {
  const sd: StateDict = new Map();
  const keys = fixtureKeyShapes(numClasses);
  // A linear bias takes fan_in from its layer's weight, which precedes it in state_dict order.
  let lastWeightShape: number[] = [];
  keys.forEach(({ key, shape, kind }, j) => {
    if (kind === 'bn.num_batches_tracked') {
      sd.set(key, { dtype: 'int64', shape: [], data: BigInt64Array.of(0n) });
      return;
    }
    if (kind === 'conv.weight' || kind === 'linear.weight') lastWeightShape = shape;
    const u = fixtureUniform(j + 1, hostNumel(shape));
    const values = entryValues(kind, u, kind.startsWith('bn.') ? 1 : fanIn(lastWeightShape));
    sd.set(key, { dtype: 'float32', shape: [...shape], data: Float32Array.from(values) });
  });
  return sd;
}

/** Which input the golden fixture was made with: make_golden.py searches for it (see the README there). */
export interface FixtureInputSpec {
  /** the fixtureUniform stream the batch is drawn from (`input_stream` in the fixture) */
  stream: number;
  /** the batch size (the first dimension of `input` in the fixture) */
  batch: number;
}

let cachedSpec: FixtureInputSpec | undefined;

/** The stream and batch size stored in the golden fixture (read once). */
export function fixtureInputSpec(): FixtureInputSpec {
  if (cachedSpec) return { ...cachedSpec };
  const file = goldenFixturePath();
  const { tensors } = readSafetensorsFile(file);
  const stream = tensors.get('input_stream');
  const input = tensors.get('input');
  if (!stream || stream.dtype !== 'int64' || stream.shape.length !== 0) {
    throw new Error(`fixtureInputSpec: expected an int64 scalar 'input_stream' in ${file}, found ${stream ? `${stream.dtype} [${stream.shape.join(',')}]` : 'none'}`);
  }
  if (!input || input.shape.length !== 4 || input.shape.slice(1).join(',') !== '3,32,32') {
    throw new Error(`fixtureInputSpec: expected an 'input' of shape [batch,3,32,32] in ${file}, found ${input ? `[${input.shape.join(',')}]` : 'none'}`);
  }
  cachedSpec = { stream: Number((stream.data as BigInt64Array)[0]), batch: input.shape[0] };
  return { ...cachedSpec };
}

/**
 * The fixture batch: x [batch,3,32,32] = 2 * fixtureUniform(stream, n) as float32, with the stream and batch size
 * the golden fixture records (fixtureInputSpec) unless given.
 */
export function fixtureInput(spec: FixtureInputSpec = fixtureInputSpec()): HostTensor {
  const shape = [spec.batch, 3, 32, 32];
  const u = fixtureUniform(spec.stream, hostNumel(shape));
  return { dtype: 'float32', shape, data: Float32Array.from(u, (v) => 2 * v) };
}

/** The fixture labels: target[i] = (7i + 3) mod 10, int64 [batch] (the fixture's batch size unless given). */
export function fixtureTargets(batch: number = fixtureInputSpec().batch): HostTensor {
  return {
    dtype: 'int64',
    shape: [batch],
    data: BigInt64Array.from({ length: batch }, (_, i) => BigInt((7 * i + 3) % 10)),
  };
}

/**
 * The flat indices at which large tensors are sampled in the fixture (`grad.<k>.sample`, `sgd3.<k>.sample`, ...):
 * all of them when numel <= 4096, else floor(t * numel / 256) for t = 0..255.
 */
export function fixtureSampleIndices(numel: number): number[] {
  if (numel <= 4096) return Array.from({ length: numel }, (_, i) => i);
  return Array.from({ length: 256 }, (_, t) => Math.floor((t * numel) / 256));
}

/**
 * The absolute path of test/fixtures/<folder>/<name>, from the sources (tsx) or from dist/test (npm test: tsc does
 * not copy fixtures, so the first test/fixtures folder above this file is used).
 */
export function fixtureFile(folder: string, name: string): string {
  let dir = __dirname;
  for (;;) {
    const candidate = path.join(dir, 'test', 'fixtures', folder, name);
    if (fs.existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`fixtureFile: expected test/fixtures/${folder}/${name} above ${__dirname}, found none`);
    dir = parent;
  }
}

/** The absolute path of a file in test/fixtures/golden. */
export function goldenFixturePath(name = 'resnet18.safetensors'): string {
  return fixtureFile('golden', name);
}
