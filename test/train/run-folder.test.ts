/**
 * Taking over a run folder (src/train/run-folder.ts through the real trainer): a second
 * `train` without --resume refuses a folder holding a run and leaves it byte for byte; --force moves the old run
 * into RUN/previous-1 and starts over; a resume after a kill -9 between the files of a save rebuilds best.ckpt,
 * best_acc.txt, best.json and latest.json and removes the dead writer's temp files; a finished run resumed again says
 * so and writes nothing; a train that fails before training leaves no empty run folder.
 * Tiny data, ResNet-18 at width 4 on the reference backend.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { resolveWeightsPath } from '../../src/run/checkpoint';
import { removeDir, tempDir } from '../data/make';
import { checkpointsDir, latestPointer, makeDataset, tinyConfig, trainQuiet } from './trainer-fixtures/setup';

let root = '';
let data = '';
let straight = ''; // 2 epochs, uninterrupted
// A tiny run whose epoch 1 scores better than its epoch 2 (what the kill test below presumes: best.ckpt is then a copy
// of epoch-0001.ckpt, byte for byte): the one-cycle settings the fast recipe had before its 5-epoch schedule.
const twoEpochs = () => tinyConfig({ epochs: 2, schedule: 'onecycle', warmupFraction: 0.25, labelSmoothing: 0.1, decayNormBias: true });
before(async () => {
  root = tempDir('run-folder');
  process.env.RESNET_CACHE_DIR = path.join(root, 'cache');
  data = await makeDataset(path.join(root, 'data'));
  straight = path.join(root, 'straight');
  const r = await trainQuiet({ config: twoEpochs(), data, out: straight, worker: false });
  assert.equal(r.result.status, 'completed');
});
after(() => removeDir(root));

/** Every file under `dir` (relative path → bytes). */
function tree(dir: string): Map<string, Buffer> {
  const files = fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => fs.statSync(path.join(dir, f)).isFile());
  return new Map(files.sort().map((f) => [f, fs.readFileSync(path.join(dir, f))]));
}

function copyRun(name: string): string {
  const run = path.join(root, name);
  fs.cpSync(straight, run, { recursive: true });
  return run;
}

const bestFiles = (run: string): string[] => ['best_acc.txt', 'best.json', 'checkpoints/best.ckpt', 'checkpoints/latest.json']
  .map((f) => path.join(run, f));

describe('a second train without --resume', () => {
  test('refuses a folder that holds a run, offering --resume, --out and --force, and leaves it byte for byte', async () => {
    const run = copyRun('second');
    const before = tree(run);
    await assert.rejects(
      trainQuiet({ config: tinyConfig({ epochs: 1, lr: 0.05 }), data, out: run, worker: false }),
      (err: Error) => {
        assert.match(err.message, /^train: .*second already holds a run \(checkpoints\/epoch-0001\.ckpt, checkpoints\/epoch-0002\.ckpt, checkpoints\/best\.ckpt and \d+ more\)\./);
        assert.match(err.message, /To continue it, add --resume; to keep it and train anew, choose another --out; to start over here, add --force \(the old run is moved into .*second\/previous-N, nothing is deleted\)/);
        return true;
      },
    );
    assert.deepEqual(tree(run), before);
  });

  test('--force moves the old run into RUN/previous-1, untouched, and trains anew', async () => {
    const run = copyRun('forced');
    const before = tree(run);
    const r = await trainQuiet({ config: tinyConfig({ epochs: 1 }), data, out: run, worker: false, force: true });
    assert.equal(r.result.status, 'completed');
    assert.ok(r.log.some((l) => l === `--force: starting over in ${run}; the earlier run was moved to ${path.join(run, 'previous-1')}`), r.log.join('\n'));
    assert.deepEqual(tree(path.join(run, 'previous-1')), before);
    assert.deepEqual(fs.readdirSync(checkpointsDir(run)).sort(), ['best.ckpt', 'epoch-0001.ckpt', 'latest.json']);
    assert.equal(r.result.step, 3, 'a new run: 3 steps, not a continuation');
    // a second --force keeps the first move and makes previous-2
    await trainQuiet({ config: tinyConfig({ epochs: 1 }), data, out: run, worker: false, force: true });
    assert.deepEqual(fs.readdirSync(run).filter((n) => n.startsWith('previous-')).sort(), ['previous-1', 'previous-2']);
    assert.deepEqual(tree(path.join(run, 'previous-1')), before);
  });

  test('a folder without a run (empty, or with unrelated files) is used without --force', async () => {
    const run = path.join(root, 'unrelated');
    fs.mkdirSync(run);
    fs.writeFileSync(path.join(run, 'notes.txt'), 'mine');
    const r = await trainQuiet({ config: tinyConfig({ epochs: 1 }), data, out: run, worker: false });
    assert.equal(r.result.status, 'completed');
    assert.equal(fs.readFileSync(path.join(run, 'notes.txt'), 'utf8'), 'mine');
  });
});

describe('resume after a kill -9 inside a save', () => {
  test('killed while best.ckpt of epoch 1 was written, before latest.json: best and the pointer are rebuilt', async () => {
    // The state such a kill leaves: epoch-0001.ckpt complete, best.ckpt only as a temp file, nothing after it.
    const run = copyRun('killed-best');
    const expected = new Map(bestFiles(straight).map((f) => [path.relative(straight, f), fs.readFileSync(f)]));
    for (const f of [...bestFiles(run), path.join(checkpointsDir(run), 'epoch-0002.ckpt')]) fs.rmSync(f);
    const temp = path.join(checkpointsDir(run), '.best.ckpt.tmp-999999999-0a1b2c3d');
    fs.writeFileSync(temp, Buffer.alloc(1000));
    const foreign = path.join(checkpointsDir(run), '.notes.txt.tmp-999999999-0a1b2c3d');
    fs.writeFileSync(foreign, 'not a file the trainer writes');

    const r = await trainQuiet({ config: twoEpochs(), data, out: run, worker: false, resume: true });
    assert.equal(r.result.status, 'completed');
    assert.match(r.stderr, /warning: removed 1 temp file\(s\) left by an interrupted save: \.best\.ckpt\.tmp-999999999-0a1b2c3d/);
    assert.match(r.stderr, /warning: .*best\.ckpt was missing or did not hold the best epoch: rebuilt from epoch-0001\.ckpt/);
    assert.equal(fs.existsSync(temp), false);
    assert.equal(fs.existsSync(foreign), true, 'a temp name that is not one of the run files is left alone');
    // The uninterrupted run's best files, byte for byte (best.json: its epoch and accuracy; it also holds a time).
    assert.deepEqual(fs.readFileSync(path.join(run, 'best_acc.txt')), expected.get('best_acc.txt'));
    const json = (f: Buffer | undefined) => JSON.parse(String(f)) as { epoch: number; accuracy: number };
    const got = json(fs.readFileSync(path.join(run, 'best.json')));
    const want = json(expected.get('best.json'));
    assert.deepEqual([got.epoch, got.accuracy], [want.epoch, want.accuracy]);
    assert.deepEqual(fs.readFileSync(path.join(checkpointsDir(run), 'best.ckpt')), expected.get(path.join('checkpoints', 'best.ckpt')));
    assert.equal(latestPointer(run).file, 'epoch-0002.ckpt');
    assert.equal(resolveWeightsPath(path.join(run, 'best')), path.join(checkpointsDir(run), 'best.ckpt'));
  });

  test('a finished run whose best files and pointer were lost: --resume rebuilds them and trains nothing', async () => {
    const run = copyRun('finished-lost');
    const bestCkpt = fs.readFileSync(path.join(checkpointsDir(straight), 'best.ckpt'));
    const bestText = fs.readFileSync(path.join(straight, 'best_acc.txt'));
    for (const f of bestFiles(run)) fs.rmSync(f);
    fs.writeFileSync(path.join(run, '.best_acc.txt.tmp-999999999-00ff00ff'), 'torn');
    const r = await trainQuiet({ config: twoEpochs(), data, out: run, worker: false, resume: true });
    assert.equal(r.result.status, 'completed');
    assert.equal(r.result.step, 6);
    assert.deepEqual(fs.readFileSync(path.join(checkpointsDir(run), 'best.ckpt')), bestCkpt);
    assert.deepEqual(fs.readFileSync(path.join(run, 'best_acc.txt')), bestText);
    assert.equal(latestPointer(run).file, 'epoch-0002.ckpt');
    assert.equal(fs.existsSync(path.join(run, '.best_acc.txt.tmp-999999999-00ff00ff')), false);
  });

  test('best_acc.txt and best.json of an older best (killed after latest.json) are rewritten', async () => {
    const run = copyRun('stale-text');
    const bestText = fs.readFileSync(path.join(straight, 'best_acc.txt'), 'utf8');
    fs.writeFileSync(path.join(run, 'best_acc.txt'), '训练轮次为7时,准确率最高!准确率为1.000%');
    fs.writeFileSync(path.join(run, 'best.json'), '{"epoch":7,"accuracy":0.01}\n');
    const r = await trainQuiet({ config: twoEpochs(), data, out: run, worker: false, resume: true });
    assert.match(r.stderr, /warning: best_acc\.txt and best\.json did not name the best epoch \(\d, \d+\.\d{3}%\): rewritten/);
    assert.equal(fs.readFileSync(path.join(run, 'best_acc.txt'), 'utf8'), bestText);
  });

  test('a consistent run is left as it was, without a warning', async () => {
    const run = copyRun('consistent');
    const before = tree(path.join(run, 'checkpoints'));
    const r = await trainQuiet({ config: twoEpochs(), data, out: run, worker: false, resume: true });
    assert.doesNotMatch(r.stderr, /warning/);
    assert.deepEqual(tree(path.join(run, 'checkpoints')), before);
  });
});

test('resuming a finished run says so and appends nothing: no resume record, no event file, no "epochs 3..2"', async () => {
  const run = copyRun('finished');
  const before = tree(run);
  for (let i = 0; i < 2; i++) {
    const r = await trainQuiet({ config: twoEpochs(), data, out: run, worker: false, resume: true });
    assert.deepEqual([r.result.status, r.result.exitCode, r.result.epochsDone, r.result.step], ['completed', 0, 2, 6]);
    assert.ok(r.log.some((l) => new RegExp(`^${run} is already finished: 2 epochs trained \\(--epochs 2\\), best accuracy \\d+\\.\\d\\d%; nothing to do \\(to train longer, resume with --epochs above 2\\)$`).test(l)), r.log.join('\n'));
    assert.ok(!r.log.some((l) => /epochs 3\.\.2/.test(l)), r.log.join('\n'));
  }
  const after = tree(run);
  assert.deepEqual([...after.keys()], [...before.keys()]);
  assert.deepEqual(after.get('metrics.jsonl'), before.get('metrics.jsonl'));
});

test('a train that fails before training leaves no empty run folder (nor the parent it created)', async () => {
  const parent = path.join(root, 'runs-new');
  const run = path.join(parent, 'r1');
  await assert.rejects(trainQuiet({ config: tinyConfig(), data: path.join(root, 'no-such-data'), out: run, worker: false }));
  assert.equal(fs.existsSync(parent), false);
  // a folder that existed before is kept, empty or not
  fs.mkdirSync(run, { recursive: true });
  await assert.rejects(trainQuiet({ config: tinyConfig(), data: path.join(root, 'no-such-data'), out: run, worker: false }));
  assert.deepEqual(fs.readdirSync(run), []);
});

test('retention: by default the 5 newest epoch files are kept, besides best.ckpt; keepLast 0 keeps every one', async () => {
  const epochFiles = (run: string) => fs.readdirSync(checkpointsDir(run)).filter((n) => n.startsWith('epoch-')).sort();
  const byDefault = path.join(root, 'keep-default');
  await trainQuiet({ config: tinyConfig({ epochs: 6 }), data, out: byDefault, worker: false });
  assert.deepEqual(epochFiles(byDefault), ['epoch-0002.ckpt', 'epoch-0003.ckpt', 'epoch-0004.ckpt', 'epoch-0005.ckpt', 'epoch-0006.ckpt']);
  assert.equal(fs.existsSync(path.join(checkpointsDir(byDefault), 'best.ckpt')), true);
  const all = path.join(root, 'keep-all');
  await trainQuiet({ config: tinyConfig({ epochs: 6 }), data, out: all, worker: false, keepLast: 0 });
  assert.equal(epochFiles(all).length, 6);
  await assert.rejects(trainQuiet({ config: tinyConfig(), data, out: path.join(root, 'keep-bad'), worker: false, keepLast: -1 }),
    /^Error: train: --keep-last must be an integer >= 0 \(0 keeps every epoch file\), received -1/);
});
