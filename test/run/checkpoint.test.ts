/**
 * Tests for the checkpoint format and the run folder's checkpoints: round trip,
 * every kind of damage detected with its reason, fallback a generation, kill -9 while saving, retention,
 * --weights resolution and the best-accuracy files.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import {
  Checkpoint, CheckpointCorruptError, NoCheckpointError, decodeCheckpoint, encodeCheckpoint, isFiniteStateDict,
  loadLatestCheckpoint, readCheckpointFile, resolveWeightsPath, saveCheckpoint, writeBestAccuracy,
} from '../../src/run/checkpoint';
import type { StateDict } from '../../src/tensor/host';
import { SAVER_ELEMENTS } from './fixtures/checkpoint-saver';
import { tempDirMaker } from '../helpers/tmp';

const tmpDir = tempDirMaker('resnet-ckpt');

function sample(epoch: number): Checkpoint {
  const model: StateDict = new Map([
    ['conv1.weight', { dtype: 'float32', shape: [2, 3, 1, 1], data: Float32Array.from([1.5, -2, 3e-8, 4, 5, epoch]) }],
    ['bn1.running_var', { dtype: 'float64', shape: [3], data: Float64Array.from([0.1, 1 / 3, 1e300]) }],
    ['bn1.num_batches_tracked', { dtype: 'int64', shape: [], data: BigInt64Array.of(-(2n ** 62n) + 7n) }],
    ['fc.bias', { dtype: 'float32', shape: [0], data: new Float32Array(0) }],
  ]);
  const buffers: StateDict = new Map([
    ['conv1.weight', { dtype: 'float32', shape: [6], data: Float32Array.from([0, 1, 2, 3, 4, 5]) }],
  ]);
  return {
    model,
    optimizer: { name: 'sgd', hyper: { lr: 0.1, momentum: 0.9, nesterov: false }, buffers, state: { stepCount: 12 } },
    epoch,
    step: epoch * 391,
    rng: { words: [1, 2, 3, 4], big: 2n ** 70n },
    config: { batchSize: 128, name: 'ré-sumé' },
    datasetFingerprint: 'sha256:abc',
    metrics: { valAcc: 0.8854, valLoss: Number.NaN, worst: Number.NEGATIVE_INFINITY },
    env: { node: 'v20', backend: 'native' },
  };
}

describe('format', () => {
  test('round trip keeps every tensor bit, dtype, shape, order and metadata value', () => {
    const c = sample(3);
    const back = decodeCheckpoint(encodeCheckpoint(c), 'mem');
    assert.deepEqual([...back.model.keys()], [...c.model.keys()]);
    assert.deepEqual(back.model, c.model);
    assert.deepEqual(back.optimizer, c.optimizer);
    assert.equal(back.epoch, 3);
    assert.equal(back.step, 3 * 391);
    assert.deepEqual(back.rng, { words: [1, 2, 3, 4], big: 2n ** 70n });
    assert.deepEqual(back.config, c.config);
    assert.ok(Number.isNaN(back.metrics?.valLoss));
    assert.equal(back.metrics?.worst, Number.NEGATIVE_INFINITY);
    assert.deepEqual(back.env, c.env);
    assert.equal(back.datasetFingerprint, 'sha256:abc');
  });

  test('optional fields stay absent', () => {
    const optimizer = { name: 'sgd', hyper: {}, buffers: new Map() };
    const c: Checkpoint = { model: new Map(), optimizer, epoch: 0, step: 0, config: {} };
    const back = decodeCheckpoint(encodeCheckpoint(c), 'mem');
    assert.deepEqual(back, c);
  });

  test('encode rejects mismatched data and metadata it cannot keep', () => {
    const c = sample(1);
    c.model.set('bad', { dtype: 'float64', shape: [2], data: new Float32Array(2) });
    assert.throws(() => encodeCheckpoint(c), /model\.bad: dtype float64 expects Float64Array data, received Float32Array/);
    const d = sample(1);
    d.model.set('bad', { dtype: 'float32', shape: [3], data: new Float32Array(2) });
    assert.throws(() => encodeCheckpoint(d), /model\.bad: shape \[3\] does not match 2 elements/);
    const e = sample(1);
    e.config.table = new Float32Array(3);
    assert.throws(() => encodeCheckpoint(e), /metadata key "table" holds a Float32Array/);
    assert.throws(() => encodeCheckpoint({ ...sample(1), epoch: -1 }), /expected epoch a non-negative integer, received -1/);
  });

  test('every kind of damage is detected, with the file name and the reason', () => {
    const good = Buffer.from(encodeCheckpoint(sample(2)));
    const flip = (i: number): Buffer => {
      const b = Buffer.from(good);
      b[i] ^= 0x20;
      return b;
    };
    const cases: [string, Buffer, RegExp][] = [
      ['0 bytes', good.subarray(0, 0), /empty file \(0 bytes\)/],
      ['1 byte', good.subarray(0, 1), /truncated: 1 bytes, smaller than the 64-byte minimum/],
      ['half', good.subarray(0, good.length >> 1), /size mismatch: the header says \d+ bytes, the file has \d+/],
      ['minus one byte', good.subarray(0, good.length - 1), /size mismatch/],
      ['magic', flip(0), /not a resnet-ts checkpoint/],
      ['version', flip(8), /format version \d+ is not supported/],
      ['length', flip(16), /size mismatch/],
      ['metadata', flip(40), /SHA-256 mismatch/],
      ['tensor data', flip(good.length - 40), /SHA-256 mismatch/],
      ['checksum', flip(good.length - 1), /SHA-256 mismatch/],
    ];
    for (const [what, bytes, reason] of cases) {
      assert.throws(
        () => decodeCheckpoint(bytes, 'runs/x/epoch-0002.ckpt'),
        (err: unknown) => {
          assert.ok(err instanceof CheckpointCorruptError, what);
          assert.match(err.message, /^checkpoint runs\/x\/epoch-0002\.ckpt: /, what);
          assert.match(err.reason, reason, what);
          return true;
        },
        what,
      );
    }
  });
});

describe('run folder', () => {
  const ckpt = (run: string, name: string): string => path.join(run, 'checkpoints', name);
  const listing = (run: string): string[] => fs.readdirSync(path.join(run, 'checkpoints')).sort();

  test('save writes the epoch file, best.ckpt and the pointer; load returns it', async () => {
    const run = tmpDir();
    const p = await saveCheckpoint(run, sample(1), { best: true });
    assert.equal(p, ckpt(run, 'epoch-0001.ckpt'));
    await saveCheckpoint(run, sample(2), {});
    assert.deepEqual(listing(run), ['best.ckpt', 'epoch-0001.ckpt', 'epoch-0002.ckpt', 'latest.json']);
    assert.equal(JSON.parse(fs.readFileSync(ckpt(run, 'latest.json'), 'utf8')).file, 'epoch-0002.ckpt');
    const { checkpoint, path: loaded, warnings } = await loadLatestCheckpoint(run);
    assert.equal(loaded, ckpt(run, 'epoch-0002.ckpt'));
    assert.deepEqual(warnings, []);
    assert.deepEqual(checkpoint.model, sample(2).model);
    assert.equal((await readCheckpointFile(ckpt(run, 'best.ckpt'))).epoch, 1);
  });

  test('retention keeps the newest keepLast epoch files and never the best copy', async () => {
    const run = tmpDir();
    for (let e = 1; e <= 5; e++) await saveCheckpoint(run, sample(e), { keepLast: 2, best: e === 2 });
    assert.deepEqual(listing(run), ['best.ckpt', 'epoch-0004.ckpt', 'epoch-0005.ckpt', 'latest.json']);
    assert.equal((await readCheckpointFile(ckpt(run, 'best.ckpt'))).epoch, 2);
    await assert.rejects(saveCheckpoint(run, sample(6), { keepLast: 0 }), /expected keepLast an integer >= 1, received 0/);
  });

  test('NaN weights are refused before anything is written', async () => {
    const run = tmpDir();
    const c = sample(1);
    (c.model.get('conv1.weight')?.data as Float32Array)[2] = Number.NaN;
    assert.equal(isFiniteStateDict(c.model), false);
    assert.equal(isFiniteStateDict(sample(1).model), true);
    await assert.rejects(saveCheckpoint(run, c, { best: true }), /refusing to save epoch 1: model\.conv1\.weight holds NaN or Inf/);
    assert.equal(fs.existsSync(path.join(run, 'checkpoints', 'epoch-0001.ckpt')), false);
  });

  for (const damage of ['empty', 'one byte', 'half', 'flipped byte', 'deleted'] as const) {
    test(`a damaged newest checkpoint (${damage}) falls back to the previous one with a warning`, async () => {
      const run = tmpDir();
      await saveCheckpoint(run, sample(1), {});
      await saveCheckpoint(run, sample(2), {});
      const f = ckpt(run, 'epoch-0002.ckpt');
      const b = fs.readFileSync(f);
      if (damage === 'empty') fs.writeFileSync(f, '');
      if (damage === 'one byte') fs.writeFileSync(f, b.subarray(0, 1));
      if (damage === 'half') fs.writeFileSync(f, b.subarray(0, b.length >> 1));
      if (damage === 'flipped byte') fs.writeFileSync(f, Buffer.from(b).fill(b[100] ^ 1, 100, 101));
      if (damage === 'deleted') fs.rmSync(f);
      const { checkpoint, path: p, warnings } = await loadLatestCheckpoint(run);
      assert.equal(checkpoint.epoch, 1);
      assert.equal(p, ckpt(run, 'epoch-0001.ckpt'));
      assert.equal(warnings.length, 1);
      const reason = {
        empty: 'empty file', 'one byte': 'truncated', half: 'size mismatch', 'flipped byte': 'SHA-256', deleted: 'missing',
      }[damage];
      assert.ok(warnings[0].startsWith(`${f}: ${reason}`), warnings[0]);
      assert.match(warnings[0], /falling back/);
    });
  }

  test('all checkpoints damaged is a clear error, and an empty run is NoCheckpointError', async () => {
    const run = tmpDir();
    await assert.rejects(loadLatestCheckpoint(run), NoCheckpointError);
    await saveCheckpoint(run, sample(1), {});
    await saveCheckpoint(run, sample(2), {});
    fs.writeFileSync(ckpt(run, 'epoch-0001.ckpt'), 'x');
    fs.truncateSync(ckpt(run, 'epoch-0002.ckpt'), 100);
    await assert.rejects(loadLatestCheckpoint(run), (err: unknown) => {
      assert.ok(err instanceof CheckpointCorruptError);
      assert.match(err.message, /epoch-0002\.ckpt: size mismatch.*epoch-0001\.ckpt: truncated.*refusing to start from scratch/);
      return true;
    });
  });

  test('an unreadable pointer warns and the epoch files are scanned; newer uncommitted files are skipped', async () => {
    const run = tmpDir();
    await saveCheckpoint(run, sample(1), {});
    await saveCheckpoint(run, sample(2), {});
    fs.writeFileSync(ckpt(run, 'latest.json'), '{"fi');
    let r = await loadLatestCheckpoint(run);
    assert.equal(r.checkpoint.epoch, 2);
    assert.match(r.warnings[0], /latest\.json is unreadable/);
    fs.writeFileSync(ckpt(run, 'latest.json'), JSON.stringify({ file: 'epoch-0001.ckpt' }));
    r = await loadLatestCheckpoint(run);
    assert.equal(r.checkpoint.epoch, 1);
    assert.match(r.warnings[0], /epoch-0002\.ckpt is newer than latest\.json's epoch-0001\.ckpt/);
  });

  test('stale temp files of dead writers are swept on the next save', async () => {
    const run = tmpDir();
    await saveCheckpoint(run, sample(1), {});
    const stale = ckpt(run, `.epoch-0002.ckpt.tmp-${process.pid}-0badc0de`);
    fs.writeFileSync(stale, 'partial');
    await saveCheckpoint(run, sample(2), {});
    assert.equal(fs.existsSync(stale), false);
  });

  test('resolveWeightsPath: file, run folder, checkpoints folder, RUN/best, and errors', async () => {
    const run = tmpDir();
    const expected = /nope does not exist \(expected a checkpoint file, a run folder, or RUN\/best\)/;
    assert.throws(() => resolveWeightsPath(path.join(run, 'nope')), expected);
    assert.throws(() => resolveWeightsPath(run), /is a folder without checkpoints/);
    assert.throws(() => resolveWeightsPath(path.join(run, 'best')), /there is no .*best\.ckpt/);
    await saveCheckpoint(run, sample(1), { best: true });
    await saveCheckpoint(run, sample(2), {});
    assert.equal(resolveWeightsPath(run), ckpt(run, 'epoch-0002.ckpt'));
    assert.equal(resolveWeightsPath(path.join(run, 'checkpoints')), ckpt(run, 'epoch-0002.ckpt'));
    assert.equal(resolveWeightsPath(path.join(run, 'best')), ckpt(run, 'best.ckpt'));
    assert.equal(resolveWeightsPath(ckpt(run, 'epoch-0001.ckpt')), ckpt(run, 'epoch-0001.ckpt'));
    fs.writeFileSync(ckpt(run, 'epoch-0002.ckpt'), 'junk');
    const warned: string[] = [];
    assert.equal(resolveWeightsPath(run, (m) => warned.push(m)), ckpt(run, 'epoch-0001.ckpt'));
    assert.match(warned[0], /epoch-0002\.ckpt: .*falling back/);
  });

  test('best accuracy files: the seed sentence with 3 decimals, and JSON', () => {
    const run = tmpDir();
    writeBestAccuracy(run, 12, 0.8854, { valLoss: 0.41 });
    assert.equal(fs.readFileSync(path.join(run, 'best_acc.txt'), 'utf8'), '训练轮次为12时,准确率最高!准确率为88.540%');
    const j = JSON.parse(fs.readFileSync(path.join(run, 'best.json'), 'utf8'));
    assert.equal(j.epoch, 12);
    assert.equal(j.accuracy, 0.8854);
    assert.equal(j.valLoss, 0.41);
    writeBestAccuracy(run, 3, 0.123456);
    assert.equal(fs.readFileSync(path.join(run, 'best_acc.txt'), 'utf8'), '训练轮次为3时,准确率最高!准确率为12.346%');
    assert.throws(() => writeBestAccuracy(run, 4, Number.NaN), /expected accuracy a fraction in \[0, 1\], received NaN/);
    assert.throws(() => writeBestAccuracy(run, 4, 88.5), /received 88\.5/);
  });
});

interface Saver {
  ready: Promise<void>;
  kill(): void;
  run(first: number, killAfterMs: number): Promise<void>;
}

/** Spawns the saver fixture; `run` hands it the first epoch and kills it with SIGKILL `killAfterMs` later. */
function spawnSaver(run: string): Saver {
  const fixture = path.join(__dirname, 'fixtures', `checkpoint-saver${path.extname(__filename)}`);
  const child = spawn(process.execPath, [...process.execArgv, fixture, run], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`saver exited with code ${code}`))));
  });
  const ready = new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  return {
    ready,
    kill: () => child.kill('SIGKILL'),
    async run(first, killAfterMs) {
      await ready;
      child.stdin.write(`${first}\n`);
      setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      await exited;
    },
  };
}

test('kill -9 at random moments while saving never leaves the run unloadable', { timeout: 120_000 }, async (t) => {
  const run = tmpDir();
  let next = spawnSaver(run);
  try {
    await next.run(1, 300); // at least one complete save before the random kills
    let lastEpoch = 0;
    let iterations = 0;
    const started = Date.now();
    for (; iterations < 20 && Date.now() - started < 40_000; iterations++) {
      const current = next;
      next = spawnSaver(run); // starts loading while this round runs
      const { checkpoint: c, path: p, warnings } = await loadLatestCheckpoint(run);
      const pointer = JSON.parse(fs.readFileSync(path.join(run, 'checkpoints', 'latest.json'), 'utf8'));
      assert.equal(path.basename(p), pointer.file, `the pointer's target loads (warnings: ${warnings.join(' | ')})`);
      assert.ok(warnings.every((w) => /is newer than latest\.json/.test(w)), warnings.join(' | '));
      assert.ok(c.epoch >= lastEpoch, `epoch went back from ${lastEpoch} to ${c.epoch}`);
      const w = c.model.get('layer.weight')?.data as Float32Array;
      assert.equal(w.length, SAVER_ELEMENTS);
      assert.ok(w.every((v) => v === c.epoch), 'every value equals the epoch');
      lastEpoch = c.epoch;
      await current.run(c.epoch + 1, Math.floor(Math.random() * 300));
    }
    t.diagnostic(`kill test: ${iterations} iterations in ${Date.now() - started} ms, last epoch ${lastEpoch}`);
    assert.ok(iterations >= 10, `only ${iterations} kill iterations ran`);
    assert.ok(lastEpoch > 1, 'saves made progress');
  } finally {
    next.kill();
  }
});
