/**
 * Lookahead (src/train/lookahead.ts): its pull schedule against written-out numbers, one synchronisation on a tiny
 * model worked out by hand, the checkpoint's `lookahead` table, and the trainer: the run ends on the slow weights and
 * an interrupted run resumes bit for bit, slow weights included.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { backendByName } from '../../src/backend';
import { Module } from '../../src/nn/module';
import { Linear } from '../../src/nn/layers';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../../src/run/checkpoint';
import { hostFloat32, type HostTensor, type StateDict, type Tensor } from '../../src/tensor';
import { configDifferences, validateConfig } from '../../src/train/config';
import { Lookahead, lookaheadDecay } from '../../src/train/lookahead';
import {
  STEPS_PER_EPOCH, assertSameTrainingState, assertStateDictsIdentical, historyWithoutTime, interruptAt, latestCheckpoint,
  tinyConfig, trainerTempRoot, trainQuiet,
} from './trainer-fixtures/setup';

const ref = backendByName('reference');

class Tiny extends Module {
  readonly fc = this.registerModule('fc', new Linear(2, 1, true, { backend: ref }));
  forward(x: Tensor): Tensor {
    return this.fc.forward(x);
  }
}

function setWeights(m: Tiny, w: [number, number], b: number): void {
  m.loadStateDict(new Map<string, HostTensor>([['fc.weight', hostFloat32([1, 2], Float32Array.from(w))], ['fc.bias', hostFloat32([1], Float32Array.of(b))]]));
}

const flat = (sd: StateDict): number[] => [...sd.values()].flatMap((t) => [...t.data].map(Number));

describe('Lookahead', () => {
  test('the pull: 0.95^k·(t/T)³, 1 at the last step', () => {
    assert.equal(lookaheadDecay(5, 0, 100), 0);
    // 0.95^5 = 0.7737809375, (1/2)³ = 0.125
    assert.ok(Math.abs(lookaheadDecay(5, 50, 100) - 0.0967226171875) < 1e-15);
    assert.ok(Math.abs(lookaheadDecay(2, 90, 100) - 0.9025 * 0.729) < 1e-15);
    assert.equal(lookaheadDecay(5, 100, 100), 1);
  });

  test('one synchronisation by hand: slow ← d·slow + (1−d)·fast, fast ← slow; only every k steps and at the last', () => {
    const m = new Tiny();
    setWeights(m, [1, 2], 3);
    const la = Lookahead.of(m, 4);
    setWeights(m, [5, 10], -1);
    assert.equal(la.afterStep(3, 8), false);
    assert.deepEqual(flat(m.stateDict()), [5, 10, -1], 'no sync at step 3');
    // step 4 of 8: d = 0.95^4 · (1/2)³ = 0.81450625 · 0.125 = 0.10181328125
    assert.equal(la.afterStep(4, 8), true);
    const d = 0.10181328125;
    const want = [d * 1 + (1 - d) * 5, d * 2 + (1 - d) * 10, d * 3 + (1 - d) * -1];
    flat(m.stateDict()).forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6, `fast ${i}: ${v} vs ${want[i]}`));
    flat(la.stateDict()).forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6, `slow ${i}: ${v} vs ${want[i]}`));
    // the last step ends on the slow weights, whatever the fast ones did
    setWeights(m, [100, 100], 100);
    assert.equal(la.afterStep(7, 7), true);
    flat(m.stateDict()).forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6, `end ${i}: ${v} vs ${want[i]}`));
    assert.equal(la.syncs, 2);
    la.dispose();
  });

  test('the lookahead table comes back with k and the sync count, bit for bit', () => {
    const m = new Tiny();
    setWeights(m, [0.1, 0.2], 0.3);
    const model = m.stateDict();
    setWeights(m, [7, 8], 9);
    const slow = m.stateDict();
    const c: Checkpoint = {
      model, optimizer: { name: 'sgd', hyper: {}, buffers: new Map() }, epoch: 1, step: 4, config: {},
      lookahead: { k: 5, syncs: 3, state: slow },
    };
    const back = decodeCheckpoint(encodeCheckpoint(c), 'x.ckpt');
    assert.deepEqual([back.lookahead?.k, back.lookahead?.syncs], [5, 3]);
    assertStateDictsIdentical(back.lookahead?.state as StateDict, slow, 'slow');
    assertStateDictsIdentical(back.model, model, 'model');
    const { lookahead: _l, ...without } = c;
    assert.equal('lookahead' in decodeCheckpoint(encodeCheckpoint(without), 'y.ckpt'), false);
  });

  test('--lookahead: a whole number >= 0; a checkpoint from before the field resumes without it', () => {
    for (const lookahead of [-1, 1.5, Number.NaN]) assert.throws(() => validateConfig(tinyConfig({ lookahead })), /--lookahead must be a whole number of steps >= 0/);
    const cfg = tinyConfig();
    const { lookahead: _l, ...before } = cfg;
    assert.deepEqual(configDifferences(before, cfg), []);
    assert.deepEqual(configDifferences(before, { ...cfg, lookahead: 5 }), ['--lookahead: 0 → 5']);
  });
});

describe('the trainer with --lookahead 2', () => {
  const fx = trainerTempRoot('lookahead-trainer');
  const config = tinyConfig({ lookahead: 2 });

  test('ends on the slow weights; an interrupted run resumes bit for bit, slow weights included; it changes the training', async () => {
    const straightRun = path.join(fx.root, 'straight');
    const straight = await trainQuiet({ config, data: fx.data, out: straightRun, worker: false });
    assert.equal(straight.result.status, 'completed');
    const final = await latestCheckpoint(straightRun);
    // 9 steps: syncs after steps 2, 4, 6, 8 and 9 (the last)
    assert.deepEqual([final.lookahead?.k, final.lookahead?.syncs], [2, 5]);
    const floats = (sd: StateDict) => new Map([...sd].filter(([, t]) => t.dtype !== 'int64'));
    assertStateDictsIdentical(floats(final.model), floats(final.lookahead?.state as StateDict), 'the run ends on the slow weights');

    const plain = await trainQuiet({ config: tinyConfig(), data: fx.data, out: path.join(fx.root, 'plain'), worker: false });
    const plainFinal = await latestCheckpoint(path.join(fx.root, 'plain'));
    assert.equal('lookahead' in plainFinal, false);
    const w = (c: Checkpoint) => [...(c.model.get('fc.weight') as HostTensor).data];
    assert.notDeepEqual(w(final), w(plainFinal), 'Lookahead changes the weights');
    assert.equal(plain.result.status, 'completed');

    const run = path.join(fx.root, 'interrupted');
    await trainQuiet({ config, data: fx.data, out: run, worker: false, transformBatch: interruptAt(STEPS_PER_EPOCH) });
    const partial = await latestCheckpoint(run);
    assert.deepEqual([partial.lookahead?.syncs, (partial.trainer as { complete: boolean }).complete], [2, false]);
    const resumed = await trainQuiet({ config, data: fx.data, out: run, worker: false, resume: true });
    assert.equal(resumed.result.status, 'completed');
    const end = await latestCheckpoint(run);
    assertSameTrainingState(end, final, 'final checkpoint');
    assert.deepEqual([end.lookahead?.k, end.lookahead?.syncs], [2, 5]);
    assertStateDictsIdentical(end.lookahead?.state as StateDict, final.lookahead?.state as StateDict, 'final slow weights');
    assert.deepEqual(historyWithoutTime(resumed.result), historyWithoutTime(straight.result));
  });
});
