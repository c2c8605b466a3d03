/**
 * `--raw-weights` of eval, predict, export and serve, on a run trained here with `--ema` (tiny generated
 * ImageFolder, ResNet-18 at width 4, reference backend), whose checkpoints hold the raw weights and their moving
 * average. The expected figures come from the trainer, which evaluates the raw model and the average itself after
 * each epoch (metrics.jsonl: test_loss and ema_test_loss): eval without the flag must give the average's loss, with
 * it the raw model's. predict and serve must classify with what export writes under the same flag.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runServe } from '../../src/cli/commands/serve';
import { readSafetensorsFile } from '../../src/interop/safetensors';
import { readMetrics } from '../../src/run/metrics';
import { encode, removeDir, rgbPattern, tempDir } from '../data/make';
import { startCli, type CliChild } from '../train/trainer-fixtures/child';
import { makeDataset, tinyConfig, trainQuiet } from '../train/trainer-fixtures/setup';

let root = '';
let data = '';
let run = '';
let image = '';
let env: Record<string, string> = {};
let trained: { raw: number; avg: number };

before(async () => {
  root = tempDir('cli-raw-weights');
  env = { RESNET_CACHE_DIR: path.join(root, 'cache') };
  process.env.RESNET_CACHE_DIR = env.RESNET_CACHE_DIR;
  data = await makeDataset(path.join(root, 'data'));
  run = path.join(root, 'run');
  // a short average (decay 0.5) over 3 steps: far enough from the raw weights to tell the two apart
  const r = await trainQuiet({ config: tinyConfig({ epochs: 1, ema: 0.5 }), data, out: run, worker: false });
  assert.equal(r.result.status, 'completed');
  const epoch = readMetrics(path.join(run, 'metrics.jsonl')).find((m) => m.kind === 'epoch');
  trained = { raw: epoch?.test_loss as number, avg: epoch?.ema_test_loss as number };
  assert.ok(Number.isFinite(trained.raw) && Number.isFinite(trained.avg), JSON.stringify(epoch));
  assert.ok(Math.abs(trained.raw - trained.avg) > 1e-3 * trained.raw, `raw ${trained.raw} and average ${trained.avg} should differ`);
  image = path.join(root, 'img.png');
  fs.writeFileSync(image, await encode(rgbPattern(32, 32, 5), 32, 32, 'png'));
});
after(() => removeDir(root));

async function finished(child: CliChild): Promise<{ code: number | null; out: string; err: string }> {
  const { code } = await child.exited;
  return { code, out: child.stdout(), err: child.stderr() };
}

/** The same loss up to the inference graph's float rounding (eval folds batch norm; the trainer does not). */
function assertLoss(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= 1e-4 * Math.abs(expected), `${what}: loss ${actual}, trainer's ${expected}`);
}

test('eval: the average by default, the raw weights with --raw-weights, each as the trainer measured it, and says which', async () => {
  const avg = await finished(startCli(['eval', '--weights', run, '--data', data, '--json'], env));
  assert.equal(avg.code, 0, avg.err);
  const a = JSON.parse(avg.out) as { loss: number; notes: string[] };
  assertLoss(a.loss, trained.avg, 'default');
  assert.match(a.notes.join('\n'), /^EMA weights \(decay 0\.5, 3 updates\)/m);
  const raw = await finished(startCli(['eval', '--weights', run, '--data', data, '--raw-weights', '--json'], env));
  assert.equal(raw.code, 0, raw.err);
  const r = JSON.parse(raw.out) as { loss: number; notes: string[] };
  assertLoss(r.loss, trained.raw, '--raw-weights');
  assert.match(r.notes.join('\n'), /^raw weights \(the checkpoint also holds EMA weights, decay 0\.5, 3 updates, not used\)$/m);
  const text = await finished(startCli(['eval', '--weights', run, '--data', data, '--raw-weights'], env));
  assert.equal(text.code, 0, text.err);
  assert.match(text.err, /^weights: raw weights \(the checkpoint also holds EMA weights/m);
});

test('export writes the raw weights with --raw-weights; predict classifies with them', async () => {
  const rawFile = path.join(root, 'raw.safetensors');
  const avgFile = path.join(root, 'avg.safetensors');
  for (const [out, flags] of [[rawFile, ['--raw-weights']], [avgFile, []]] as const) {
    const e = await finished(startCli(['export', '--weights', run, '--out', out, ...flags], env));
    assert.equal(e.code, 0, e.err);
  }
  const rawSd = readSafetensorsFile(rawFile).tensors;
  const avgSd = readSafetensorsFile(avgFile).tensors;
  const key = 'layer1.0.left.0.weight';
  const values = (t: { data: ArrayLike<number | bigint> } | undefined): number[] => Array.from(t?.data ?? [], Number);
  assert.notDeepEqual(values(rawSd.get(key)), values(avgSd.get(key)), 'two different sets of weights');

  const probs = async (weights: string, flags: string[] = []): Promise<number[]> => {
    const p = await finished(startCli(['predict', image, '--weights', weights, '--json', ...flags], env));
    assert.equal(p.code, 0, p.err);
    const [res] = JSON.parse(p.out) as Array<{ probs: number[] }>;
    assert.equal(res.probs.length, 3, p.out);
    return res.probs;
  };
  assert.deepEqual(await probs(run, ['--raw-weights']), await probs(rawFile));
  assert.deepEqual(await probs(run), await probs(avgFile));
});

test('serve: --raw-weights loads the raw weights, and /api/model says so', async () => {
  for (const rawWeights of [true, false]) {
    const running = await runServe({ weights: run, rawWeights, host: '127.0.0.1', port: 0, maxConcurrent: 2, allowHost: [], quiet: true, backend: 'reference' }, () => undefined);
    try {
      const model = await (await fetch(`${running.url}/api/model`)).json() as { weights: { notes: string[] } };
      assert.match(model.weights.notes.join('\n'), rawWeights ? /^raw weights \(the checkpoint also holds EMA weights/m : /^EMA weights \(decay 0\.5/m);
    } finally {
      await running.close();
    }
  }
});
