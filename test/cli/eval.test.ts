/**
 * `resnet eval` as a child process, on a run trained here for one epoch (tiny generated ImageFolder, ResNet-18 at
 * width 4, reference backend): the JSON report is consistent with itself (confusion row sums = images per class,
 * trace / n = accuracy, per-class accuracy = diagonal / row sum) and with the trainer's own test metrics (the training
 * graph in eval mode; eval runs the folded inference graph, so the loss agrees within 1e-4 relative, the accuracy
 * exactly); the table output says the same; a wrong --weights path is a one-line error with a non-zero exit.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeSafetensorsFile } from '../../src/interop/safetensors';
import { resnet18 } from '../../src/models/resnet';
import { readMetrics } from '../../src/run/metrics';
import { removeDir, tempDir } from '../data/make';
import { startCli, type CliChild } from '../train/trainer-fixtures/child';
import { CLASSES, makeDataset, tinyConfig, trainQuiet } from '../train/trainer-fixtures/setup';

const TEST_PER_CLASS = [3, 4, 5];

/** eval's loss (inference graph) against the trainer's (eval-mode training graph): float rounding apart. */
function assertSameLoss(actual: number, expected: number | undefined): void {
  assert.ok(expected !== undefined && Math.abs(actual - expected) <= 1e-4 * Math.abs(expected), `loss ${actual}, trainer's ${expected}`);
}
let root = '';
let data = '';
let run = '';
let env: Record<string, string> = {};
let trained: { test_loss: number; test_acc: number };

before(async () => {
  root = tempDir('cli-eval');
  env = { RESNET_CACHE_DIR: path.join(root, 'cache') };
  process.env.RESNET_CACHE_DIR = env.RESNET_CACHE_DIR;
  data = await makeDataset(path.join(root, 'data'), { testPerClass: TEST_PER_CLASS });
  run = path.join(root, 'run');
  const r = await trainQuiet({ config: tinyConfig({ epochs: 1 }), data, out: run, worker: false });
  assert.equal(r.result.status, 'completed');
  const epoch = readMetrics(path.join(run, 'metrics.jsonl')).find((m) => m.kind === 'epoch');
  trained = { test_loss: epoch?.test_loss as number, test_acc: epoch?.test_acc as number };
});
after(() => removeDir(root));

async function finished(child: CliChild): Promise<{ code: number | null; out: string; err: string }> {
  const { code } = await child.exited;
  return { code, out: child.stdout(), err: child.stderr() };
}

interface Report {
  weights: string;
  split: string;
  classes: string[];
  n: number;
  loss: number;
  acc: number;
  perClassAcc: number[];
  confusion: number[][];
}

test('--json: loss, accuracy, per-class accuracy and confusion matrix agree with each other and with training', async () => {
  const r = await finished(startCli(['eval', '--weights', run, '--data', data, '--json'], env));
  assert.equal(r.code, 0, r.err);
  const rep = JSON.parse(r.out) as Report;
  assert.match(rep.weights, /checkpoints[/\\]epoch-0001\.ckpt$/, 'the run folder resolves to its newest checkpoint');
  assert.equal(rep.split, 'test');
  assert.deepEqual(rep.classes, CLASSES);
  const total = TEST_PER_CLASS.reduce((a, b) => a + b, 0);
  assert.equal(rep.n, total);
  assert.equal(rep.confusion.length, CLASSES.length);
  rep.confusion.forEach((row, i) => {
    assert.equal(row.length, CLASSES.length);
    assert.ok(row.every((v) => Number.isInteger(v) && v >= 0), JSON.stringify(row));
    assert.equal(row.reduce((a, b) => a + b, 0), TEST_PER_CLASS[i], `row ${i} sums to the images of ${CLASSES[i]}`);
    assert.equal(rep.perClassAcc[i], row[i] / TEST_PER_CLASS[i]);
  });
  const trace = rep.confusion.reduce((s, row, i) => s + row[i], 0);
  assert.equal(rep.acc, trace / total);
  assert.ok(Number.isFinite(rep.loss) && rep.loss > 0, `loss ${rep.loss}`);
  // the same weights, images and batch size as the trainer's test pass after epoch 1
  assertSameLoss(rep.loss, trained.test_loss);
  assert.equal(rep.acc, trained.test_acc);
});

test('the table: the summary line, then the confusion matrix with per-class accuracy', async () => {
  const json = JSON.parse((await finished(startCli(['eval', '--weights', run, '--data', data, '--json'], env))).out) as Report;
  const r = await finished(startCli(['eval', '--weights', path.join(run, 'best'), '--data', data], env));
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trimEnd().split('\n');
  const head = `on test (${json.n} images): loss ${json.loss.toFixed(4)}, accuracy ${(100 * json.acc).toFixed(2)}%`;
  assert.ok(lines[0].endsWith(head), `${lines[0]}\nexpected to end with: ${head}`);
  assert.match(lines[0], /best\.ckpt on test/);
  assert.equal(lines[1], '');
  assert.equal(lines[2], 'true \\ predicted');
  assert.deepEqual(lines[3].trim().split(/\s+/), [...CLASSES, 'acc']);
  CLASSES.forEach((c, i) => {
    const cells = lines[4 + i].trim().split(/\s+/);
    assert.equal(cells[0], c);
    assert.deepEqual(cells.slice(1, 1 + CLASSES.length).map(Number), json.confusion[i]);
    assert.equal(cells[1 + CLASSES.length], `${(100 * json.perClassAcc[i]).toFixed(1)}%`);
  });
  assert.equal(lines.length, 4 + CLASSES.length);
});

test('--limit N: the seeded subset train --test-limit N evaluates, not the first N images (one class)', async () => {
  const limited = path.join(root, 'limited');
  const t = await trainQuiet({ config: tinyConfig({ epochs: 1, testLimit: 6 }), data, out: limited, worker: false });
  assert.equal(t.result.status, 'completed');
  const epoch = readMetrics(path.join(limited, 'metrics.jsonl')).find((m) => m.kind === 'epoch');
  const r = await finished(startCli(['eval', '--weights', limited, '--data', data, '--limit', '6', '--json'], env));
  assert.equal(r.code, 0, r.err);
  const rep = JSON.parse(r.out) as Report;
  assert.equal(rep.n, 6);
  // Test images 1, 4, 5, 6, 9, 10 of cat 0-2, dog 3-6, ship 7-11 (the first 6 would be 3 cats and 3 dogs, no ship).
  assert.deepEqual(rep.confusion.map((row) => row.reduce((a, b) => a + b, 0)), [1, 3, 2]);
  assertSameLoss(rep.loss, epoch?.test_loss as number | undefined);
  assert.equal(rep.acc, epoch?.test_acc);
});

test('--data defaults as for train: ./data when present, else the packaged CIFAR-10', async () => {
  const withData = path.join(root, 'cwd-with-data');
  fs.mkdirSync(withData);
  fs.symlinkSync(data, path.join(withData, 'data'));
  const r = await finished(startCli(['eval', '--weights', run, '--json'], env, withData));
  assert.equal(r.code, 0, r.err);
  assert.equal((JSON.parse(r.out) as Report).n, 12);
  const without = path.join(root, 'cwd-without-data');
  fs.mkdirSync(without);
  // src/cli/defaults.ts chooses the packaged tarball, and says so; its 10 classes do not fit these 3-class weights
  const d = await finished(startCli(['eval', '--weights', run, '--json'], env, without));
  assert.equal(d.code, 1);
  assert.match(d.err, /^data: the packaged CIFAR-10 /m);
  assert.match(d.err, /^resnet: eval: the weights have 3 classes, the dataset 10$/m);
});

test('weights missing a key: one line naming it, without an internal function name', async () => {
  const sd = resnet18({ numClasses: 3, baseWidth: 4 }).stateDict();
  sd.delete('layer1.0.left.0.weight');
  const partial = path.join(root, 'partial.safetensors');
  writeSafetensorsFile(partial, sd);
  const r = await finished(startCli(['eval', '--weights', partial, '--data', data], env));
  assert.equal(r.code, 1);
  assert.equal(r.err, `resnet: eval: --weights ${partial} does not fit ResNet-18: missing keys: layer1.0.left.0.weight\n`);
});

test('a wrong --weights path is one clear line and exit code 1', async () => {
  const missing = path.join(root, 'no-such-run');
  const r = await finished(startCli(['eval', '--weights', missing, '--data', data, '--json'], env));
  assert.equal(r.code, 1);
  assert.equal(r.out, '');
  assert.equal(r.err.trim(), `resnet: --weights ${missing} does not exist (expected a checkpoint file, a run folder, or RUN/best)`);

  const noCheckpoints = await finished(startCli(['eval', '--weights', data, '--data', data], env));
  assert.equal(noCheckpoints.code, 1);
  assert.match(noCheckpoints.err, /^resnet: --weights .* is a folder without checkpoints/m);
});
