/**
 * The training run's precision (`--precision`, the recipes' defaults): resolved before the data is read, printed,
 * recorded in run.json and in every checkpoint's env, and refused by name where it cannot run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { backendByName, nativeUnavailableReason } from '../../src/backend';
import { RECIPES } from '../../src/train/config';
import { train } from '../../src/train/trainer';
import { latestCheckpoint, tinyConfig, trainerTempRoot, trainQuiet } from './trainer-fixtures/setup';

const fx = trainerTempRoot('trainer-precision');

const runJson = (run: string) => JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8')) as { precision: string; config: { precision: string } };

test('the recipes: seed trains in fp32, fast in auto (bf16 where the CPU has it)', () => {
  assert.equal(RECIPES.seed.precision, 'fp32');
  assert.equal(RECIPES.fast.precision, 'auto');
});

test('auto on a backend without bf16 trains in fp32, and says so in the log, run.json and the checkpoints', async () => {
  const out = path.join(fx.root, 'auto-ref');
  const r = await trainQuiet({ config: tinyConfig({ epochs: 1, precision: 'auto' }), data: fx.data, out, worker: false });
  assert.equal(r.result.status, 'completed');
  assert.ok(r.log.some((l) => / on reference in fp32: /.test(l)), r.log.join('\n'));
  assert.deepEqual([runJson(out).precision, runJson(out).config.precision], ['fp32', 'auto']);
  assert.equal((await latestCheckpoint(out)).env?.precision, 'fp32');
});

test('bf16 where it cannot run is refused before any fx.data is read, naming why, and leaves no run folder', async () => {
  const out = path.join(fx.root, 'bf16-ref');
  await assert.rejects(trainQuiet({ config: tinyConfig({ precision: 'bf16' }), data: fx.data, out, worker: false }),
    /--precision bf16: bf16 needs the native backend/);
  assert.equal(fs.existsSync(out), false);
});

const nativeBf16 = (): string | false => {
  const why = nativeUnavailableReason() ?? backendByName('native').bf16Unavailable();
  return why ?? false;
};

test('bf16 on a CPU that has it: the run trains in bf16 and records it', { skip: nativeBf16() }, async () => {
  const out = path.join(fx.root, 'bf16-native');
  const be = backendByName('native');
  try {
    const r = await train({ backend: be, config: tinyConfig({ epochs: 1, precision: 'bf16' }), data: fx.data, out, worker: false, log: () => {} });
    assert.equal(r.status, 'completed');
    assert.equal(runJson(out).precision, 'bf16');
    assert.equal((await latestCheckpoint(out)).env?.precision, 'bf16');
  } finally {
    be.setPrecision('fp32');
  }
});
