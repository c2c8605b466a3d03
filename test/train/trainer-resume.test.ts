/**
 * End to end through the real trainer (src/train/trainer.ts) on a tiny generated ImageFolder, ResNet-18 at width 4
 * on the reference backend: resume ends bit-identical to the uninterrupted run whether the run stopped at
 * an epoch boundary or in the middle of an epoch; a damaged newest checkpoint falls back a generation and still
 * ends bit-identical; TensorBoard after a resume (a new file sorting after the old one, file_version then
 * SessionLog START, scalars equal to the uninterrupted run's once TensorBoard's purge is applied); metrics.jsonl;
 * best_acc.txt in the seed's words; --keep-last retention.
 *
 * The interruption is a real SIGINT delivered to the trainer's own listener (process.emit from a transformBatch
 * hook at a chosen global step), so the same code path as Ctrl-C runs: finish the step, save, stop.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadLatestCheckpoint, readCheckpointFile, type Checkpoint } from '../../src/run/checkpoint';
import { readMetrics } from '../../src/run/metrics';
import { readEventFile, type ParsedEvent } from '../../src/run/tensorboard';
import { removeDir, tempDir } from '../data/make';
import {
  STEPS_PER_EPOCH, assertSameTrainingState, checkpointsDir, effectiveEpochMetrics, historyWithoutTime, interruptAt,
  latestCheckpoint, latestPointer, makeDataset, tinyConfig, trainQuiet, type Captured,
} from './trainer-fixtures/setup';

let root = '';
let data = '';
let straight: Captured; // run A: 3 epochs, uninterrupted
let straightFinal: Checkpoint;
const runA = (): string => path.join(root, 'A');

before(async () => {
  root = tempDir('trainer-resume');
  process.env.RESNET_CACHE_DIR = path.join(root, 'cache');
  data = await makeDataset(path.join(root, 'data'));
  // The worker thread here and the main thread in the interrupted runs: the batches must not depend on it.
  straight = await trainQuiet({ config: tinyConfig(), data, out: runA(), worker: true });
  straightFinal = await latestCheckpoint(runA());
});
after(() => removeDir(root));

test('the uninterrupted run: 3 epochs, a checkpoint per epoch, finite losses, best_acc.txt in the seed\'s words', () => {
  const r = straight.result;
  assert.equal(r.status, 'completed');
  assert.equal(r.exitCode, 0);
  assert.equal(r.epochsDone, 3);
  assert.equal(r.step, 3 * STEPS_PER_EPOCH);
  assert.equal(r.history.length, 3);
  for (const h of r.history) assert.ok(Number.isFinite(h.train_loss) && Number.isFinite(h.test_loss), JSON.stringify(h));
  const files = fs.readdirSync(checkpointsDir(runA())).sort();
  assert.deepEqual(files, ['best.ckpt', 'epoch-0001.ckpt', 'epoch-0002.ckpt', 'epoch-0003.ckpt', 'latest.json']);
  assert.equal(latestPointer(runA()).file, 'epoch-0003.ckpt');
  const best = fs.readFileSync(path.join(runA(), 'best_acc.txt'), 'utf8');
  const m = /^训练轮次为(\d+)时,准确率最高!准确率为(\d+\.\d{3})%$/.exec(best);
  assert.ok(m, `best_acc.txt: ${JSON.stringify(best)}`);
  const bestEpoch = Number(m[1]);
  const bestAcc = Math.max(...r.history.map((h) => h.test_acc));
  assert.equal(bestEpoch, r.history.find((h) => h.test_acc === bestAcc)?.epoch, 'the first epoch reaching the best accuracy');
  assert.equal(m[2], (100 * bestAcc).toFixed(3));
  assert.equal(r.bestAcc, bestAcc);
  assert.equal(fs.existsSync(path.join(runA(), 'train.lock')), false, 'the lock is released');
});

/** Interrupts a fresh run (same config) once the 0-based global step `at` completes, then resumes it to the end. */
async function interruptedThenResumed(name: string, at: number): Promise<{
  run: string; first: Captured; second: Captured; partial: Checkpoint; pointer: string;
}> {
  const run = path.join(root, name);
  const first = await trainQuiet({ config: tinyConfig(), data, out: run, worker: false, transformBatch: interruptAt(at) });
  const partial = await latestCheckpoint(run);
  const pointer = latestPointer(run).file;
  const second = await trainQuiet({ config: tinyConfig(), data, out: run, worker: false, resume: true });
  return { run, first, second, partial, pointer };
}

describe('interrupted at the end of epoch 2, then resumed', () => {
  let r: Awaited<ReturnType<typeof interruptedThenResumed>>;
  before(async () => {
    r = await interruptedThenResumed('boundary', 2 * STEPS_PER_EPOCH - 1);
  });

  test('the interrupted run stops after epoch 2 with exit code 130 and a complete checkpoint', () => {
    assert.equal(r.first.result.status, 'interrupted');
    assert.equal(r.first.result.exitCode, 130);
    assert.equal(r.first.result.epochsDone, 2);
    assert.equal(r.partial.epoch, 2);
    assert.equal(r.partial.step, 2 * STEPS_PER_EPOCH);
    assert.equal((r.partial.trainer as { complete: boolean }).complete, true);
    assert.match(r.first.stderr, /SIGINT: finishing the current step/);
    assert.ok(r.first.log.some((l) => /^interrupted after epoch 2: checkpoint saved/.test(l)), r.first.log.join('\n'));
  });

  test('the resumed run ends bit-identical to the uninterrupted one: weights, momentum, history, metrics', async () => {
    assert.equal(r.second.result.status, 'completed');
    assert.ok(r.second.log.some((l) => /^resumed from .*epoch-0002\.ckpt: epoch 2, step 6$/.test(l)), r.second.log.join('\n'));
    assertSameTrainingState(await latestCheckpoint(r.run), straightFinal, 'final checkpoint');
    assert.deepEqual(historyWithoutTime(r.second.result), historyWithoutTime(straight.result));
    assert.equal(r.second.result.bestAcc, straight.result.bestAcc);
    assert.equal(effectiveEpochMetrics(runA()).length, 3);
    assert.deepEqual(effectiveEpochMetrics(r.run), effectiveEpochMetrics(runA()));
    const resumes = readMetrics(path.join(r.run, 'metrics.jsonl')).filter((m) => m.kind === 'resume');
    assert.deepEqual(resumes.map((m) => [m.epoch, m.step]), [[2, 2 * STEPS_PER_EPOCH + 1]], 'the first step the resumed run writes');
    assert.equal(fs.readFileSync(path.join(r.run, 'best_acc.txt'), 'utf8'), fs.readFileSync(path.join(runA(), 'best_acc.txt'), 'utf8'));
  });

  test('TensorBoard: a second event file sorting after the first, opening with file_version and START', () => {
    const files = eventFiles(r.run);
    assert.equal(files.length, 2);
    const second = readEventFile(files[1]);
    assert.equal(second.tornTail, false);
    assert.equal(second.events[0].fileVersion, 'brain.Event:2');
    assert.equal(second.events[1].sessionLog?.status, 'START');
    // START(T) makes TensorBoard drop earlier events with step >= T; the resumed run writes steps 7.. only.
    assert.equal(second.events[1].step, 2 * STEPS_PER_EPOCH + 1);
  });

  test('TensorBoard: after the purge the scalars equal the uninterrupted run\'s (train_loss per step, the rest per epoch)', () => {
    const resumed = scalarsAfterPurge(eventFiles(r.run));
    const expected = scalarsAfterPurge(eventFiles(runA()));
    assert.deepEqual(resumed, expected);
    const steps = (tag: string) => (expected.get(tag) ?? []).map(([s]) => s);
    assert.deepEqual(steps('train_loss'), [1, 2, 3, 4, 5, 6, 7, 8, 9], 'one train_loss point per step, nothing else under that tag');
    for (const tag of ['test_loss', 'test_acc', 'lr', 'train_acc', 'train_loss_epoch']) assert.deepEqual(steps(tag), [3, 6, 9], tag);
  });
});

describe('interrupted in the middle of epoch 2, then resumed', () => {
  let r: Awaited<ReturnType<typeof interruptedThenResumed>>;
  before(async () => {
    r = await interruptedThenResumed('mid', STEPS_PER_EPOCH); // stops after the first step of epoch 2
  });

  test('the interrupted run saves a partial epoch-0002 checkpoint with its position', () => {
    assert.equal(r.first.result.status, 'interrupted');
    assert.equal(r.first.result.exitCode, 130);
    assert.equal(r.first.result.epochsDone, 1);
    assert.equal(r.partial.epoch, 2);
    assert.equal(r.partial.step, STEPS_PER_EPOCH + 1);
    const t = r.partial.trainer as { complete: boolean; batchInEpoch: number };
    assert.deepEqual([t.complete, t.batchInEpoch], [false, 1]);
    assert.equal(r.pointer, 'epoch-0002.ckpt');
  });

  test('the resumed run skips the done steps and ends bit-identical to the uninterrupted one', async () => {
    assert.equal(r.second.result.status, 'completed');
    assert.ok(r.second.log.some((l) => /^resumed from .*epoch-0002\.ckpt: epoch 1 \+ 1 steps, step 4$/.test(l)), r.second.log.join('\n'));
    assertSameTrainingState(await latestCheckpoint(r.run), straightFinal, 'final checkpoint');
    // the completed epoch 2 replaced the partial file, and equals the uninterrupted run's epoch 2
    const e2 = await readCheckpointFile(path.join(checkpointsDir(r.run), 'epoch-0002.ckpt'));
    assertSameTrainingState(e2, await readCheckpointFile(path.join(checkpointsDir(runA()), 'epoch-0002.ckpt')), 'epoch 2');
    assert.deepEqual(historyWithoutTime(r.second.result), historyWithoutTime(straight.result));
    assert.deepEqual(effectiveEpochMetrics(r.run), effectiveEpochMetrics(runA()));
    assert.deepEqual(scalarsAfterPurge(eventFiles(r.run)), scalarsAfterPurge(eventFiles(runA())));
  });
});

test('an epoch split by an interruption reports its whole time: the part before the checkpoint plus the part after', async () => {
  // A clock that moves only when the test says: the first step of epoch 2 "takes" 100 s, the resumed part 30 s.
  let clockMs = 0;
  const clock = () => clockMs;
  const run = path.join(root, 'split-time');
  const slowThenStop: ReturnType<typeof interruptAt> = (_b, step) => {
    if (step !== STEPS_PER_EPOCH) return;
    clockMs += 100_000;
    process.emit('SIGINT', 'SIGINT');
  };
  await trainQuiet({ config: tinyConfig(), data, out: run, worker: false, clock, transformBatch: slowThenStop });
  const partial = (await latestCheckpoint(run)).trainer as { complete: boolean; epochSeconds: number };
  assert.deepEqual([partial.complete, partial.epochSeconds], [false, 100], 'the partial checkpoint holds the time spent on epoch 2 so far');
  const resumed = await trainQuiet({
    config: tinyConfig(), data, out: run, worker: false, resume: true, clock,
    transformBatch: (_b, step) => { if (step === STEPS_PER_EPOCH + 1) clockMs += 30_000; },
  });
  assert.deepEqual(resumed.result.history.map((h) => [h.epoch, h.seconds]), [[1, 0], [2, 130], [3, 0]], 'epoch 2: 100 s before + 30 s after');
  const logged = readMetrics(path.join(run, 'metrics.jsonl')).filter((m) => m.kind === 'epoch');
  assert.deepEqual(logged.map((m) => [m.epoch, m.seconds]), [[1, 0], [2, 130], [3, 0]], 'metrics.jsonl: the same whole-epoch times');
  assert.equal(((await latestCheckpoint(run)).trainer as { epochSeconds: number }).epochSeconds, 0, 'a complete epoch carries nothing');
});

test('a damaged newest checkpoint: resume warns, falls back to epoch 1, and still ends bit-identical', async () => {
  const run = path.join(root, 'damaged');
  await trainQuiet({ config: tinyConfig(), data, out: run, worker: false, transformBatch: interruptAt(2 * STEPS_PER_EPOCH - 1) });
  const newest = path.join(checkpointsDir(run), 'epoch-0002.ckpt');
  const bytes = fs.readFileSync(newest);
  bytes[bytes.length >> 1] ^= 0x10; // one flipped bit in the middle of the weights
  fs.writeFileSync(newest, bytes);
  assert.equal(latestPointer(run).file, 'epoch-0002.ckpt', 'the pointer still names the damaged file');

  const resumed = await trainQuiet({ config: tinyConfig(), data, out: run, worker: false, resume: true });
  assert.match(resumed.stderr, /warning: .*epoch-0002\.ckpt: .*; falling back to the previous checkpoint/);
  assert.ok(resumed.log.some((l) => /^resumed from .*epoch-0001\.ckpt: epoch 1, step 3$/.test(l)), resumed.log.join('\n'));
  assert.equal(resumed.result.status, 'completed');
  assertSameTrainingState(await latestCheckpoint(run), straightFinal, 'final checkpoint');
  assert.deepEqual(historyWithoutTime(resumed.result), historyWithoutTime(straight.result));
  assert.deepEqual(effectiveEpochMetrics(run), effectiveEpochMetrics(runA()));
  assert.deepEqual(scalarsAfterPurge(eventFiles(run)), scalarsAfterPurge(eventFiles(runA())));
  const loaded = await loadLatestCheckpoint(run);
  assert.deepEqual(loaded.warnings, [], 'epoch-0002 was rewritten whole');
});

test('--keep-last 2 keeps the two newest epoch files (plus best.ckpt and latest.json)', async () => {
  const run = path.join(root, 'keep');
  const r = await trainQuiet({ config: tinyConfig(), data, out: run, worker: false, keepLast: 2 });
  assert.equal(r.result.status, 'completed');
  const files = fs.readdirSync(checkpointsDir(run)).sort();
  assert.deepEqual(files, ['best.ckpt', 'epoch-0002.ckpt', 'epoch-0003.ckpt', 'latest.json']);
  assertSameTrainingState(await latestCheckpoint(run), straightFinal, 'final checkpoint');
});

// ------------------------------------------------------------------------------------------------ helpers

function eventFiles(run: string): string[] {
  return fs.readdirSync(run).filter((n) => n.startsWith('events.out.tfevents.')).sort().map((n) => path.join(run, n));
}

/**
 * The scalars TensorBoard shows for a run folder: files in name order; a SessionLog START at step T drops the
 * events read so far with step >= T (event_accumulator.py `_Purge`: keeps x.step < event.step). Per tag, the
 * [step, value] points in order.
 */
function scalarsAfterPurge(files: string[]): Map<string, [number, number][]> {
  let events: ParsedEvent[] = [];
  for (const f of files) {
    for (const ev of readEventFile(f).events) {
      if (ev.sessionLog?.status === 'START') events = events.filter((e) => e.step < ev.step);
      else if (ev.scalars) events.push(ev);
    }
  }
  const out = new Map<string, [number, number][]>();
  for (const ev of events) {
    for (const s of ev.scalars ?? []) {
      if (!out.has(s.tag)) out.set(s.tag, []);
      out.get(s.tag)?.push([ev.step, s.value]);
    }
  }
  return new Map([...out.entries()].sort(([a], [b]) => a.localeCompare(b)));
}
