/**
 * Helpers for the trainer's end-to-end tests (not a test file): a tiny ImageFolder dataset generated with sharp,
 * the small configuration every test trains with (ResNet-18 at width 4, 3 steps per epoch, on the reference
 * backend), a quiet wrapper around train(), a hook that "presses Ctrl-C" at a chosen global step, and exact
 * comparisons of state dicts.
 */
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { backendByName } from '../../../src/backend';
import type { HostTensor, StateDict } from '../../../src/tensor/host';
import { RECIPES, type TrainConfig } from '../../../src/train/config';
import { readCheckpointFile, type Checkpoint } from '../../../src/run/checkpoint';
import { readMetrics } from '../../../src/run/metrics';
import { train, type TrainOptions, type TrainResult } from '../../../src/train/trainer';
import { encode, removeDir, rgbPattern, tempDir, writeTree } from '../../data/make';

export const CLASSES = ['cat', 'dog', 'ship'];

/**
 * train/<class>/*.png (8 per class) and test/<class>/*.png (`testPerClass`, default 3, 4, 5: unequal on purpose,
 * so that confusion-matrix row sums say something). Each class has its own colour offset, so it is learnable.
 */
export async function makeDataset(root: string, opts: { testPerClass?: number[]; variant?: number } = {}): Promise<string> {
  const testPer = opts.testPerClass ?? [3, 4, 5];
  const files: Record<string, Uint8Array> = {};
  for (let c = 0; c < CLASSES.length; c++) {
    for (let i = 0; i < 8; i++) {
      files[`train/${CLASSES[c]}/${i}.png`] = await encode(rgbPattern(32, 32, 80 * c + 3 * i + (opts.variant ?? 0)), 32, 32, 'png');
    }
    for (let i = 0; i < testPer[c]; i++) {
      files[`test/${CLASSES[c]}/${i}.png`] = await encode(rgbPattern(32, 32, 80 * c + 3 * i + 1), 32, 32, 'png');
    }
  }
  writeTree(root, files);
  return root;
}

/**
 * The fast5 recipe (linear lr from the global step, nesterov, label smoothing, no decay on batch-norm parameters,
 * crop + flip, flip TTA each epoch), made tiny. (Under the fast recipe's one-cycle schedule the 2-epoch tiny model
 * gives every image the same class, which tests of evaluation cannot tell apart from a broken one.)
 */
export function tinyConfig(over: Partial<TrainConfig> = {}): TrainConfig {
  return { ...RECIPES.fast5, epochs: 3, batchSize: 8, baseWidth: 4, ...over };
}

/** The same configuration as `resnet train` flags. */
export const TINY_FLAGS = ['--recipe', 'fast5', '--epochs', '3', '--batch-size', '8', '--width', '4'];

export const STEPS_PER_EPOCH = 3; // 24 training images, batches of 8

export interface Captured {
  result: TrainResult;
  log: string[];
  stderr: string;
}

/** Runs train() on the reference backend with its log and stderr captured (stderr is restored afterwards). */
export async function trainQuiet(opts: Omit<TrainOptions, 'backend'>): Promise<Captured> {
  const log: string[] = [];
  let stderr = '';
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  }) as typeof process.stderr.write;
  try {
    const result = await train({ backend: backendByName('reference'), log: (l) => log.push(l), ...opts });
    return { result, log, stderr };
  } catch (err) {
    (err as Error).message += `\n--- trainer stderr ---\n${stderr}`;
    throw err;
  } finally {
    process.stderr.write = write;
  }
}

/**
 * A transformBatch hook that sends this process a SIGINT (through the trainer's own listener) just before the step
 * with this 0-based global index: that step completes, then the trainer saves and stops.
 */
export function interruptAt(globalStep: number, signal: 'SIGINT' | 'SIGTERM' = 'SIGINT'): TrainOptions['transformBatch'] {
  return (_b, step) => {
    if (step === globalStep) process.emit(signal, signal);
  };
}

export function checkpointsDir(run: string): string {
  return path.join(run, 'checkpoints');
}

export function latestPointer(run: string): { file: string; epoch: number; step: number } {
  return JSON.parse(fs.readFileSync(path.join(checkpointsDir(run), 'latest.json'), 'utf8'));
}

/** The checkpoint latest.json names. */
export async function latestCheckpoint(run: string): Promise<Checkpoint> {
  return readCheckpointFile(path.join(checkpointsDir(run), latestPointer(run).file));
}

function bytesOf(t: HostTensor): Buffer {
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** Asserts two state dicts have the same keys, dtypes, shapes and bytes; names the first tensors that differ. */
export function assertStateDictsIdentical(actual: StateDict, expected: StateDict, what: string): void {
  assert.deepEqual([...actual.keys()], [...expected.keys()], `${what}: keys`);
  const differing: string[] = [];
  for (const [k, e] of expected) {
    const a = actual.get(k) as HostTensor;
    assert.equal(a.dtype, e.dtype, `${what}: ${k} dtype`);
    assert.deepEqual(a.shape, e.shape, `${what}: ${k} shape`);
    if (!bytesOf(a).equals(bytesOf(e))) differing.push(k);
  }
  assert.equal(differing.length, 0, `${what}: ${differing.length} tensors differ, first: ${differing.slice(0, 5).join(', ')}`);
}

/** Asserts two checkpoints hold the same model, optimizer buffers, epoch and step. */
export function assertSameTrainingState(actual: Checkpoint, expected: Checkpoint, what: string): void {
  assert.equal(actual.epoch, expected.epoch, `${what}: epoch`);
  assert.equal(actual.step, expected.step, `${what}: step`);
  assertStateDictsIdentical(actual.model, expected.model, `${what} model`);
  assertStateDictsIdentical(actual.optimizer.buffers, expected.optimizer.buffers, `${what} optimizer buffers`);
}

/** History rows without the wall-clock seconds. */
export function historyWithoutTime(r: TrainResult): Omit<TrainResult['history'][number], 'seconds'>[] {
  return r.history.map(({ seconds: _s, ...rest }) => rest);
}

/**
 * The epoch records of RUN/metrics.jsonl as docs/training-files.md says to read them: a 'resume' record at step S
 * supersedes earlier records with step >= S (the same rule as TensorBoard's purge). Values only: no time, no seconds.
 */
export function effectiveEpochMetrics(run: string): Record<string, unknown>[] {
  const kept: Record<string, unknown>[] = [];
  for (const r of readMetrics(path.join(run, 'metrics.jsonl'))) {
    if (r.kind === 'resume') {
      for (let i = kept.length - 1; i >= 0; i--) if ((kept[i].step as number) >= r.step) kept.splice(i, 1);
    } else if (r.kind === 'epoch') {
      const { time: _t, seconds: _s, ...rest } = r;
      kept.push(rest);
    }
  }
  return kept;
}

/**
 * A test file's temporary folder: a fresh root holding the tiny dataset (see makeDataset) and the decode cache
 * (RESNET_CACHE_DIR), made before its tests and removed after them. Read `root` and `data` inside tests.
 */
export function trainerTempRoot(prefix: string): { root: string; data: string } {
  const fx = { root: '', data: '' };
  before(async () => {
    fx.root = tempDir(prefix);
    process.env.RESNET_CACHE_DIR = path.join(fx.root, 'cache');
    fx.data = await makeDataset(path.join(fx.root, 'data'));
  });
  after(() => removeDir(fx.root));
  return fx;
}
