/**
 * The moving average of the weights (src/train/ema.ts) and where it travels: the update against numbers worked out
 * by hand in the comments, its warm-up, the checkpoint file's `ema` table, loadWeights' choice between the average
 * (the default) and the raw weights, and the trainer end to end: metrics with the EMA's figures, best.ckpt ranked
 * by them, and a run interrupted in the middle of an epoch that resumes bit for bit, average included.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { backendByName } from '../../src/backend';
import { openDataset } from '../../src/data';
import { Loader } from '../../src/data/loader';
import { nativeAvailable, nativeMemoryStats } from '../../src/backend/native';
import { loadWeights } from '../../src/interop/weights';
import { buildModel, modelFromWeights } from '../../src/models';
import { Module } from '../../src/nn/module';
import { BatchNorm2d, Linear } from '../../src/nn/layers';
import {
  decodeCheckpoint, encodeCheckpoint, readCheckpointFile, saveCheckpoint, type Checkpoint,
} from '../../src/run/checkpoint';
import { readMetrics } from '../../src/run/metrics';
import { hostFloat32, hostInt64Scalar, type HostTensor, type StateDict, type Tensor } from '../../src/tensor';
import { configDifferences, validateConfig } from '../../src/train/config';
import { emaDecayAt, WeightEma } from '../../src/train/ema';
import { evaluateFused } from '../../src/train/evaluate';
import {
  STEPS_PER_EPOCH, assertSameTrainingState, assertStateDictsIdentical, checkpointsDir, effectiveEpochMetrics,
  historyWithoutTime, interruptAt, latestCheckpoint, tinyConfig, trainerTempRoot, trainQuiet,
} from './trainer-fixtures/setup';

const ref = backendByName('reference');

/** fc: Linear(2 → 1) and bn: BatchNorm2d(1): every kind of state the average handles, 7 entries. */
class Tiny extends Module {
  readonly fc = this.registerModule('fc', new Linear(2, 1, true, { backend: ref }));
  readonly bn = this.registerModule('bn', new BatchNorm2d(1, 1e-5, 0.1, { backend: ref }));
  forward(x: Tensor): Tensor {
    return this.fc.forward(x);
  }
}

/** A Tiny state dict from written-out values. */
function tinyState(v: { w: [number, number]; b: number; g: number; beta: number; mean: number; var: number; n: number }): StateDict {
  return new Map<string, HostTensor>([
    ['fc.weight', hostFloat32([1, 2], Float32Array.from(v.w))],
    ['fc.bias', hostFloat32([1], Float32Array.of(v.b))],
    ['bn.weight', hostFloat32([1], Float32Array.of(v.g))],
    ['bn.bias', hostFloat32([1], Float32Array.of(v.beta))],
    ['bn.running_mean', hostFloat32([1], Float32Array.of(v.mean))],
    ['bn.running_var', hostFloat32([1], Float32Array.of(v.var))],
    ['bn.num_batches_tracked', hostInt64Scalar(v.n)],
  ]);
}

/** Every value of a state dict, flattened in key order (int64 as numbers). */
function values(sd: StateDict): number[] {
  return [...sd.values()].flatMap((t) => [...t.data].map(Number));
}

function assertCloseAll(actual: number[], expected: number[], rtol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const bad = actual.map((a, i) => [i, a, expected[i]]).filter(([, a, e]) => Math.abs(a - e) > rtol * Math.max(1, Math.abs(e)));
  assert.deepEqual(bad, [], `${what}: [index, actual, expected] beyond rtol ${rtol}; actual ${actual.join(', ')}`);
}

describe('the update', () => {
  test('the warm-up of the decay: min(decay, (1 + n) / (10 + n)) for update n', () => {
    assert.equal(emaDecayAt(0.999, 1), 2 / 11);
    assert.equal(emaDecayAt(0.999, 2), 0.25); // 3/12
    assert.equal(emaDecayAt(0.999, 10), 0.55); // 11/20
    assert.equal(emaDecayAt(0.999, 90), 0.91); // 91/100
    assert.equal(emaDecayAt(0.999, 1000), 1001 / 1010); // 0.99109: the warm-up still lowers 0.999
    assert.equal(emaDecayAt(0.999, 20000), 0.999);
    assert.equal(emaDecayAt(0.125, 1), 0.125, 'a decay below the warm-up is used as it is');
  });

  test('two updates in the warm-up, worked out by hand; the model itself is untouched', () => {
    const model = new Tiny();
    // start: w = [1, -2], b = 10, gamma 1, beta 0, running mean 0, var 1, 0 batches
    model.loadStateDict(tinyState({ w: [1, -2], b: 10, g: 1, beta: 0, mean: 0, var: 1, n: 0 }));
    const ema = WeightEma.of(model, 0.999);
    assert.equal(ema.updates, 0);
    // step 1 (d = 2/11): ema = (2·old + 9·new) / 11
    //   w:    (2·1 + 9·12) / 11 = 110/11 = 10;   (2·(−2) + 9·9) / 11 = 77/11 = 7
    //   b:    (2·10 + 9·(−1)) / 11 = 11/11 = 1;  gamma: 1 stays 1
    //   beta: (0 + 9·11) / 11 = 9;  mean: 9;  var: (2·1 + 9·12) / 11 = 10;  num_batches_tracked copied: 1
    model.loadStateDict(tinyState({ w: [12, 9], b: -1, g: 1, beta: 11, mean: 11, var: 12, n: 1 }));
    ema.update();
    assert.equal(ema.updates, 1);
    assertCloseAll(values(ema.stateDict()), [10, 7, 1, 1, 9, 9, 10, 1], 1e-6, 'after step 1');
    // step 2 (d = 3/12 = 1/4): ema = old/4 + 3·new/4
    //   w: 10/4 + 3·2/4 = 4;  7/4 + 3·(−1)/4 = 1;  b: 1/4 + 15/4 = 4;  gamma: 1/4 + 9/4 = 2.5
    //   beta: 9/4 + 3/4 = 3;  mean: 3;  var: 10/4 + 6/4 = 4;  num_batches_tracked: 2
    const now = tinyState({ w: [2, -1], b: 5, g: 3, beta: 1, mean: 1, var: 2, n: 2 });
    model.loadStateDict(now);
    ema.update();
    assertCloseAll(values(ema.stateDict()), [4, 1, 4, 2.5, 3, 3, 4, 2], 1e-6, 'after step 2');
    assertStateDictsIdentical(model.stateDict(), now, 'the model after the updates');
    assert.deepEqual([...ema.stateDict().keys()], [...model.stateDict().keys()], 'the state dict order');
    ema.dispose();
    model.dispose();
  });

  test('a decay below the warm-up, with numbers exact in float32: 0.125·1 + 0.875·9 = 8', () => {
    const model = new Tiny();
    model.loadStateDict(tinyState({ w: [1, 1], b: 1, g: 1, beta: 1, mean: 1, var: 1, n: 0 }));
    const ema = WeightEma.of(model, 0.125);
    model.loadStateDict(tinyState({ w: [9, 9], b: 9, g: 9, beta: 9, mean: 9, var: 9, n: 5 }));
    ema.update();
    // then 0.125·8 + 0.875·(−8) = 1 − 7 = −6
    assert.deepEqual(values(ema.stateDict()), [8, 8, 8, 8, 8, 8, 8, 5]);
    model.loadStateDict(tinyState({ w: [-8, -8], b: -8, g: -8, beta: -8, mean: -8, var: -8, n: 6 }));
    ema.update();
    assert.deepEqual(values(ema.stateDict()), [-6, -6, -6, -6, -6, -6, -6, 6]);
    ema.dispose();
    model.dispose();
  });

  test('an average restored from its state dict and update count goes on exactly as the original', () => {
    const model = new Tiny();
    const ema = WeightEma.of(model, 0.9);
    model.loadStateDict(tinyState({ w: [0.3, 0.7], b: 0.1, g: 1.1, beta: 0.2, mean: 0.05, var: 0.9, n: 1 }));
    ema.update();
    const restored = WeightEma.fromState(model, 0.9, ema.stateDict(), ema.updates);
    model.loadStateDict(tinyState({ w: [0.6, -0.2], b: 0.3, g: 0.8, beta: -0.1, mean: 0.2, var: 1.3, n: 2 }));
    ema.update();
    restored.update();
    assert.equal(restored.updates, 2);
    assertStateDictsIdentical(restored.stateDict(), ema.stateDict(), 'restored vs original');
    assert.throws(() => WeightEma.fromState(model, 0.9, new Map([...ema.stateDict()].slice(1)), 2), /WeightEma: the saved average lacks fc\.weight/);
    ema.dispose();
    restored.dispose();
    model.dispose();
  });
});

const native = nativeAvailable();
const noNative = native.ok ? false : `native addon unavailable: ${native.reason}`;

test('native backend: the update frees what it replaces, and agrees with the reference backend', { skip: noNative }, async () => {
  const spec = { arch: 'resnet18' as const, width: 4, numClasses: 3, inputSize: 32 };
  const nat = buildModel(spec, { seed: 2, backend: backendByName('native') });
  const refModel = buildModel(spec, { seed: 2, backend: ref });
  const start = refModel.stateDict();
  nat.loadStateDict(start);
  const emas = [WeightEma.of(nat, 0.99), WeightEma.of(refModel, 0.99)];
  const moved = new Map([...start].map(([k, t]) => [k, t.dtype === 'int64' ? t : hostFloat32(t.shape, (t.data as Float32Array).map((v) => 1.5 * v + 0.25))]));
  nat.loadStateDict(moved);
  refModel.loadStateDict(moved);
  const buffers = nativeMemoryStats().liveBuffers;
  for (let i = 0; i < 10; i++) {
    emas.forEach((e) => e.update());
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(nativeMemoryStats().liveBuffers, buffers, `update ${i + 1}: live native buffers`);
  }
  assertCloseAll(values(emas[0].stateDict()), values(emas[1].stateDict()), 1e-5, 'native vs reference');
  emas.forEach((e) => e.dispose());
  assert.ok(nativeMemoryStats().liveBuffers < buffers, 'dispose frees the average');
  nat.dispose();
  refModel.dispose();
});

/** A minimal checkpoint of Tiny: raw weights `model`, and the average `ema` when given. */
function tinyCheckpoint(model: StateDict, ema?: StateDict): Checkpoint {
  return {
    model, optimizer: { name: 'sgd', hyper: { lr: 0.1 }, buffers: new Map() }, epoch: 1, step: 7, config: { ema: ema ? 0.999 : 0 },
    ...(ema ? { ema: { decay: 0.999, updates: 7, state: ema } } : {}),
  };
}

const RAW = tinyState({ w: [1, 2], b: 3, g: 4, beta: 5, mean: 6, var: 7, n: 7 });
const AVG = tinyState({ w: [-1, -2], b: -3, g: -4, beta: -5, mean: -6, var: -7, n: 7 });

describe('checkpoints', () => {
  const fx = trainerTempRoot('ema-checkpoints');

  test('the ema table comes back with its decay and update count, bit for bit; without one there is none', () => {
    const back = decodeCheckpoint(encodeCheckpoint(tinyCheckpoint(RAW, AVG)), 'x.ckpt');
    assert.deepEqual([back.ema?.decay, back.ema?.updates], [0.999, 7]);
    assertStateDictsIdentical(back.ema?.state as StateDict, AVG, 'ema');
    assertStateDictsIdentical(back.model, RAW, 'model');
    assert.equal('ema' in decodeCheckpoint(encodeCheckpoint(tinyCheckpoint(RAW)), 'y.ckpt'), false);
  });

  test('a NaN in the average is refused like one in the weights', async () => {
    const bad = new Map(AVG);
    bad.set('bn.running_var', hostFloat32([1], Float32Array.of(NaN)));
    await assert.rejects(saveCheckpoint(path.join(fx.root, 'nan'), tinyCheckpoint(RAW, bad)),
      /^Error: saveCheckpoint: refusing to save epoch 1: ema\.bn\.running_var holds NaN or Inf/);
  });

  test('loadWeights reads the average by default and says so; { ema: false } reads the raw weights', async () => {
    const file = await saveCheckpoint(path.join(fx.root, 'both'), tinyCheckpoint(RAW, AVG));
    const byDefault = await loadWeights(file);
    assertStateDictsIdentical(byDefault.stateDict, AVG, 'default');
    assert.deepEqual(byDefault.notes, ['EMA weights (decay 0.999, 7 updates): the checkpoint\'s moving average of the weights, used by default']);
    const raw = await loadWeights(file, { ema: false });
    assertStateDictsIdentical(raw.stateDict, RAW, 'ema: false');
    assert.deepEqual(raw.notes, ['raw weights (the checkpoint also holds EMA weights, decay 0.999, 7 updates, not used)']);
    const plainFile = await saveCheckpoint(path.join(fx.root, 'plain'), tinyCheckpoint(RAW));
    const plain = await loadWeights(plainFile);
    assertStateDictsIdentical(plain.stateDict, RAW, 'no ema in the file');
    assert.deepEqual(plain.notes, []);
  });

  test('a checkpoint from before --ema resumes as --ema 0; another decay is a difference', () => {
    const cfg = tinyConfig();
    const { ema: _e, ...before } = cfg;
    assert.deepEqual(configDifferences(before, cfg), []);
    assert.deepEqual(configDifferences(before, { ...cfg, ema: 0.99 }), ['--ema: 0 → 0.99']);
    assert.deepEqual(configDifferences({ ...cfg, ema: 0.9 }, { ...cfg, ema: 0.99 }), ['--ema: 0.9 → 0.99']);
    assert.deepEqual(configDifferences({ ...cfg, ttaEval: 'off' }, cfg), [], 'the TTA evaluation is not part of the computation');
  });

  test('--ema must be a decay in [0, 1); --tta-eval one of the modes', () => {
    for (const ema of [1, -0.1, Number.NaN]) {
      assert.throws(() => validateConfig(tinyConfig({ ema })), new RegExp(`^Error: train: --ema must be a decay in \\[0, 1\\) \\(0: no moving average\\), received ${ema}$`));
    }
    assert.doesNotThrow(() => validateConfig(tinyConfig({ ema: 0.9999 })));
    assert.throws(() => validateConfig(tinyConfig({ ttaEval: 'mirror' as 'flip' })), /^Error: train: --tta-eval must be one of off, flip, flip-shift, received mirror$/);
  });
});

describe('the trainer with --ema 0.9', () => {
  const fx = trainerTempRoot('ema-trainer');
  const config = tinyConfig({ ema: 0.9 });

  test('metrics, best.ckpt and an interrupted run resumed bit for bit, average included', async () => {
    const straightRun = path.join(fx.root, 'straight');
    const straight = await trainQuiet({ config, data: fx.data, out: straightRun, worker: false });
    assert.equal(straight.result.status, 'completed');
    const final = await latestCheckpoint(straightRun);
    assert.deepEqual([final.ema?.decay, final.ema?.updates], [0.9, 3 * STEPS_PER_EPOCH]);
    const differs = [...final.model].some(([k, t]) => t.dtype !== 'int64' &&
      Buffer.compare(Buffer.from(t.data.buffer), Buffer.from((final.ema?.state.get(k) as HostTensor).data.buffer)) !== 0);
    assert.ok(differs, 'the average is not the weights');

    const epochs = readMetrics(path.join(straightRun, 'metrics.jsonl')).filter((m) => m.kind === 'epoch');
    for (const k of ['ema_test_loss', 'ema_test_acc', 'test_acc_tta', 'test_loss_tta', 'ema_test_acc_tta', 'ema_test_loss_tta']) {
      assert.ok(epochs.every((m) => typeof m[k] === 'number' && Number.isFinite(m[k])), `${k} in every epoch record`);
    }
    assert.ok(straight.log.some((l) => /^epoch 3\/3: .*\| test loss \S+ acc \S+% \(tta \S+%\) \| ema test loss \S+ acc \S+% \(tta \S+%\) \| lr/.test(l)),
      straight.log.join('\n'));

    // the best epoch is ranked by the average's accuracy (the first to reach its maximum)
    const emaAcc = epochs.map((m) => m.ema_test_acc as number);
    const bestEpoch = emaAcc.indexOf(Math.max(...emaAcc)) + 1;
    const bestJson = JSON.parse(fs.readFileSync(path.join(straightRun, 'best.json'), 'utf8'));
    assert.deepEqual([bestJson.epoch, bestJson.accuracy, bestJson.weights], [bestEpoch, Math.max(...emaAcc), 'ema']);
    assert.equal(straight.result.bestAcc, Math.max(...emaAcc));

    // ema_test_acc is the accuracy of the weights loadWeights reads from the epoch's checkpoint by default (through
    // the folded graph, as the trainer evaluates)
    const w = await loadWeights(path.join(checkpointsDir(straightRun), 'epoch-0003.ckpt'));
    const { model } = modelFromWeights(w.stateDict, { recorded: w.spec, where: 'epoch 3', backend: ref });
    const data = await openDataset(fx.data, { onBadImage: 'fail' });
    const loader = new Loader(data.test, { batchSize: 256, shuffle: false, seed: 0, dropLast: false, augment: { crop: false, flip: false } });
    const again = await evaluateFused(model, loader, 3, { tta: 'flip' });
    assert.deepEqual([again.acc, again.loss, again.tta?.acc, again.tta?.loss],
      [epochs[2].ema_test_acc, epochs[2].ema_test_loss, epochs[2].ema_test_acc_tta, epochs[2].ema_test_loss_tta]);
    model.dispose();

    // interrupted after the first step of epoch 2, resumed: the same average, weights, history and metrics
    const run = path.join(fx.root, 'interrupted');
    await trainQuiet({ config, data: fx.data, out: run, worker: false, transformBatch: interruptAt(STEPS_PER_EPOCH) });
    const partial = await latestCheckpoint(run);
    assert.deepEqual([partial.ema?.updates, (partial.trainer as { complete: boolean }).complete], [STEPS_PER_EPOCH + 1, false]);
    const resumed = await trainQuiet({ config, data: fx.data, out: run, worker: false, resume: true });
    assert.equal(resumed.result.status, 'completed');
    const end = await latestCheckpoint(run);
    assertSameTrainingState(end, final, 'final checkpoint');
    assert.deepEqual([end.ema?.decay, end.ema?.updates], [final.ema?.decay, final.ema?.updates]);
    assertStateDictsIdentical(end.ema?.state as StateDict, final.ema?.state as StateDict, 'final average');
    assert.deepEqual(historyWithoutTime(resumed.result), historyWithoutTime(straight.result));
    assert.deepEqual(effectiveEpochMetrics(run), effectiveEpochMetrics(straightRun));
    assert.equal(fs.readFileSync(path.join(run, 'best_acc.txt'), 'utf8'), fs.readFileSync(path.join(straightRun, 'best_acc.txt'), 'utf8'));
    const best = await readCheckpointFile(path.join(checkpointsDir(run), 'best.ckpt'));
    assert.equal(best.epoch, bestEpoch);
  });

  test('with a validation split: ema_val_* each epoch, and the best epoch ranked by ema_val_acc', async () => {
    const run = path.join(fx.root, 'val');
    const r = await trainQuiet({ config: tinyConfig({ ema: 0.9, epochs: 2, valSplit: 6 }), data: fx.data, out: run, worker: false });
    assert.equal(r.result.status, 'completed');
    const epochs = readMetrics(path.join(run, 'metrics.jsonl')).filter((m) => m.kind === 'epoch');
    for (const k of ['val_loss', 'val_acc', 'ema_val_loss', 'ema_val_acc']) assert.ok(epochs.every((m) => Number.isFinite(m[k])), k);
    assert.ok(epochs.every((m) => !('val_acc_tta' in m)), 'TTA is for the test split only');
    const acc = epochs.map((m) => m.ema_val_acc as number);
    const best = JSON.parse(fs.readFileSync(path.join(run, 'best.json'), 'utf8'));
    assert.deepEqual([best.epoch, best.accuracy], [acc.indexOf(Math.max(...acc)) + 1, Math.max(...acc)]);
    assert.ok(r.log.some((l) => /\| val loss \S+ acc \S+% \| ema test loss \S+ acc \S+% \(tta \S+%\) \| ema val loss \S+ acc \S+% \| lr/.test(l)), r.log.join('\n'));
  });

  test('with --ema 0 and --tta-eval off there is no average and none of its keys, nor TTA keys', async () => {
    const run = path.join(fx.root, 'plain');
    await trainQuiet({ config: tinyConfig({ epochs: 1, ttaEval: 'off' }), data: fx.data, out: run, worker: false });
    const [m] = readMetrics(path.join(run, 'metrics.jsonl')).filter((r) => r.kind === 'epoch');
    assert.deepEqual(Object.keys(m).filter((k) => /ema|tta/.test(k)), []);
    assert.ok('test_acc' in m);
    assert.equal('ema' in (await latestCheckpoint(run)), false);
  });
});
