/**
 * Faults through the real trainer (src/train/trainer.ts) on a tiny generated ImageFolder, ResNet-18 at width 4 on the
 * reference backend: a NaN batch and an lr ×1e7 end as 'diverged' with exit code 3 and the
 * last good checkpoint untouched, never a NaN model saved or ranked best; resuming with another configuration or
 * another dataset is refused unless forced, a forced change says what changed, and the same dataset at
 * another path (copied, re-extracted) is not another dataset.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isFiniteStateDict, readCheckpointFile } from '../../src/run/checkpoint';
import { readMetrics } from '../../src/run/metrics';
import { readEventFile } from '../../src/run/tensorboard';
import {
  assertSameTrainingState, checkpointsDir, latestCheckpoint, latestPointer, makeDataset, STEPS_PER_EPOCH, tinyConfig,
  trainerTempRoot, trainQuiet,
} from './trainer-fixtures/setup';

const fx = trainerTempRoot('trainer-faults');

/** A transformBatch hook that puts one NaN into the batch of this 0-based global step. */
const poisonAt = (globalStep: number) => (b: { x: Float32Array }, step: number): void => {
  if (step === globalStep) b.x[5] = Number.NaN;
};

function snapshot(dir: string): Map<string, Buffer> {
  return new Map(fs.readdirSync(dir).sort().map((n) => [n, fs.readFileSync(path.join(dir, n))]));
}

function eventTags(run: string): { tag: string; step: number; value: number }[] {
  return fs.readdirSync(run).filter((n) => n.startsWith('events.out.tfevents.')).sort()
    .flatMap((n) => readEventFile(path.join(run, n)).events)
    .flatMap((e) => (e.scalars ?? []).map((s) => ({ tag: s.tag, step: e.step, value: s.value })));
}

test('a NaN in a batch of epoch 2: diverged, exit 3, the epoch-1 checkpoint stays the latest and the best; resume recovers', async () => {
  const run = path.join(fx.root, 'nan');
  const poisoned = STEPS_PER_EPOCH + 1; // the second step of epoch 2
  const r = await trainQuiet({ config: tinyConfig({ epochs: 2 }), data: fx.data, out: run, worker: false, transformBatch: poisonAt(poisoned) });
  assert.equal(r.result.status, 'diverged');
  assert.equal(r.result.exitCode, 3);
  assert.equal(r.result.epochsDone, 1);
  assert.equal(r.result.step, poisoned, 'the poisoned step is not counted');
  assert.match(r.stderr, new RegExp(`error: training diverged at epoch 2, step ${poisoned + 1}: the input of training image \\d+ holds NaN; no update was applied`));

  assert.deepEqual(fs.readdirSync(checkpointsDir(run)).sort(), ['best.ckpt', 'epoch-0001.ckpt', 'latest.json']);
  assert.equal(latestPointer(run).file, 'epoch-0001.ckpt');
  const latest = await latestCheckpoint(run);
  assert.ok(isFiniteStateDict(latest.model) && isFiniteStateDict(latest.optimizer.buffers));
  const best = await readCheckpointFile(path.join(checkpointsDir(run), 'best.ckpt'));
  assertSameTrainingState(best, latest, 'best.ckpt');
  assert.match(fs.readFileSync(path.join(run, 'best_acc.txt'), 'utf8'), /^训练轮次为1时/);
  const epochs = readMetrics(path.join(run, 'metrics.jsonl')).filter((m) => m.kind === 'epoch');
  assert.deepEqual(epochs.map((m) => m.epoch), [1], 'no epoch record for the diverged epoch');
  assert.deepEqual(eventTags(run).filter((e) => e.tag === 'diverged'), [{ tag: 'diverged', step: poisoned, value: 1 }]);
  assert.equal(fs.existsSync(path.join(run, 'train.lock')), false);

  const resumed = await trainQuiet({ config: tinyConfig({ epochs: 2 }), data: fx.data, out: run, worker: false, resume: true });
  assert.equal(resumed.result.status, 'completed');
  assert.equal(resumed.result.step, 2 * STEPS_PER_EPOCH);
  assert.ok(isFiniteStateDict((await latestCheckpoint(run)).model));
});

test('a NaN in the very first batch: diverged, exit 3, no checkpoint and no best_acc.txt', async () => {
  const run = path.join(fx.root, 'nan-first');
  const r = await trainQuiet({ config: tinyConfig({ epochs: 1 }), data: fx.data, out: run, worker: false, transformBatch: poisonAt(0) });
  assert.deepEqual([r.result.status, r.result.exitCode, r.result.step, r.result.epochsDone], ['diverged', 3, 0, 0]);
  const ck = checkpointsDir(run);
  assert.equal(fs.existsSync(ck) ? fs.readdirSync(ck).length : 0, 0);
  assert.equal(fs.existsSync(path.join(run, 'best_acc.txt')), false);
});

test('an lr that overflows the weights with finite losses is caught before anything is evaluated or saved', async () => {
  // lr 1e6: every loss of epoch 1 is finite, but a BatchNorm running variance overflows to Inf
  const run = path.join(fx.root, 'lr-overflow');
  const r = await trainQuiet({ config: tinyConfig({ epochs: 1, lr: 1e6, schedule: 'constant' }), data: fx.data, out: run, worker: false });
  assert.deepEqual([r.result.status, r.result.exitCode, r.result.epochsDone], ['diverged', 3, 0]);
  assert.match(r.stderr, /error: training diverged in epoch 1 \(after step 3\): \S+ holds NaN or Inf/);
  assert.equal(fs.existsSync(checkpointsDir(run)) && fs.readdirSync(checkpointsDir(run)).length > 0, false);
  assert.equal(readMetrics(path.join(run, 'metrics.jsonl')).filter((m) => m.kind === 'epoch').length, 0);
});

describe('resuming with another configuration or dataset', () => {
  const run = (): string => path.join(fx.root, 'config');
  let other = '';
  before(async () => {
    other = await makeDataset(path.join(fx.root, 'other-data'), { variant: 1 });
    const r = await trainQuiet({ config: tinyConfig({ epochs: 1 }), data: fx.data, out: run(), worker: false });
    assert.equal(r.result.status, 'completed');
  });

  test('a changed hyperparameter is refused, naming it, and the run folder is left as it was', async () => {
    const before = fs.readdirSync(run()).sort();
    const ckBefore = snapshot(checkpointsDir(run()));
    await assert.rejects(
      trainQuiet({ config: tinyConfig({ epochs: 2, lr: 0.2 }), data: fx.data, out: run(), worker: false, resume: true }),
      /refusing to resume .*epoch-0001\.ckpt with a different configuration \(use --force to override\):\n {2}--lr: 0\.1 → 0\.2\n/,
    );
    assert.deepEqual(fs.readdirSync(run()).sort(), before, 'no new event file, no lock left behind');
    assert.deepEqual(snapshot(checkpointsDir(run())), ckBefore);
  });

  test('another dataset is refused', async () => {
    await assert.rejects(
      trainQuiet({ config: tinyConfig({ epochs: 2 }), data: other, out: run(), worker: false, resume: true }),
      /refusing to resume .*epoch-0001\.ckpt: the dataset differs from the one it was trained on \(use --force to override\)/,
    );
    assert.equal(fs.existsSync(path.join(run(), 'train.lock')), false);
  });

  test('forced: lr ×1e7 is accepted with a warning, diverges, and leaves the good checkpoints byte for byte', async () => {
    const ckBefore = snapshot(checkpointsDir(run()));
    const bestText = fs.readFileSync(path.join(run(), 'best_acc.txt'));
    const r = await trainQuiet({
      config: tinyConfig({ epochs: 2, lr: 1e6, schedule: 'constant' }), data: fx.data, out: run(), worker: false, resume: true, force: true,
    });
    assert.match(r.stderr, /warning: resuming with a changed setting \(forced\): --lr: 0\.1 → 1000000/);
    assert.match(r.stderr, /warning: resuming with a changed setting \(forced\): --schedule: "linear" → "constant"/);
    assert.deepEqual([r.result.status, r.result.exitCode, r.result.epochsDone], ['diverged', 3, 1]);
    assert.deepEqual(snapshot(checkpointsDir(run())), ckBefore);
    assert.deepEqual(fs.readFileSync(path.join(run(), 'best_acc.txt')), bestText);
  });

  test('forced: another dataset, with more epochs than before (epochs may always grow)', async () => {
    const r = await trainQuiet({ config: tinyConfig({ epochs: 2 }), data: other, out: run(), worker: false, resume: true, force: true });
    assert.match(r.stderr, /warning: resuming on a dataset whose content differs from the one the checkpoint was trained on \(forced\)/);
    assert.equal(r.result.status, 'completed');
    assert.equal(r.result.epochsDone, 2);
    assert.equal(latestPointer(run()).file, 'epoch-0002.ckpt');
  });

  test('the same dataset copied elsewhere (new path, new mtimes) resumes without --force and without a warning', async () => {
    const run = path.join(fx.root, 'moved');
    const first = await trainQuiet({ config: tinyConfig({ epochs: 1 }), data: fx.data, out: run, worker: false });
    assert.equal(first.result.status, 'completed');
    const copy = path.join(fx.root, 'data-copy');
    fs.cpSync(fx.data, copy, { recursive: true });
    const later = new Date(Date.now() + 60_000);
    for (const f of fs.readdirSync(copy, { recursive: true, encoding: 'utf8' })) fs.utimesSync(path.join(copy, f), later, later);
    const r = await trainQuiet({ config: tinyConfig({ epochs: 2 }), data: copy, out: run, worker: false, resume: true });
    assert.equal(r.result.status, 'completed');
    assert.equal(r.result.epochsDone, 2);
    assert.doesNotMatch(r.stderr, /warning/);
  });
});
