/**
 * Tests for metrics.jsonl: records round-trip (NaN and Inf included), a torn last line is skipped by the reader
 * and cut when the log reopens, a bad middle line is an error, and bad input is rejected.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MetricsLog, readMetrics, METRICS_FILE } from '../../src/run/metrics';
import { tempDirMaker } from '../helpers/tmp';

const tmpDir = tempDirMaker('resnet-metrics');

test('step, epoch and resume records are one JSON line each and read back', () => {
  const run = tmpDir();
  const log = MetricsLog.open(run);
  log.logStep(10, { loss: 2.25, lr: 0.1 }, 0);
  log.logEpoch(0, 391, { trainLoss: 1.5, valAcc: 0.4, valLoss: Number.NaN, gradNorm: Number.POSITIVE_INFINITY });
  log.logResume(1, 391);
  log.close();
  const text = fs.readFileSync(path.join(run, METRICS_FILE), 'utf8');
  assert.equal(text.split('\n').length, 4);
  assert.ok(text.endsWith('\n'));
  const recs = readMetrics(path.join(run, METRICS_FILE));
  assert.deepEqual(recs.map((r) => [r.kind, r.epoch, r.step]), [['step', 0, 10], ['epoch', 0, 391], ['resume', 1, 391]]);
  assert.equal(recs[0].loss, 2.25);
  assert.ok(Number.isNaN(recs[1].valLoss as number));
  assert.equal(recs[1].gradNorm, Number.POSITIVE_INFINITY);
  assert.ok(Math.abs(Date.parse(recs[0].time) - Date.now()) < 60_000);
  assert.match(text.split('\n')[1], /"valLoss":"NaN"/);
});

test('a torn last line is skipped by the reader and cut when the log reopens', () => {
  const run = tmpDir();
  const file = path.join(run, METRICS_FILE);
  const log = MetricsLog.open(run);
  log.logStep(1, { loss: 1 });
  log.logStep(2, { loss: 0.5 });
  log.close();
  fs.appendFileSync(file, '{"kind":"step","time":"2026-01-0');
  assert.deepEqual(readMetrics(file).map((r) => r.step), [1, 2]);
  const warnings: string[] = [];
  const again = MetricsLog.open(run, { onWarning: (m) => warnings.push(m) });
  again.logStep(3, { loss: 0.25 });
  again.close();
  assert.match(warnings[0], /cut a torn last line/);
  assert.deepEqual(readMetrics(file).map((r) => r.step), [1, 2, 3]);
});

test('a bad line in the middle is an error with its line number', () => {
  const file = path.join(tmpDir(), METRICS_FILE);
  fs.writeFileSync(file, '{"kind":"step","step":1}\nnot json\n{"kind":"step","step":2}\n');
  assert.throws(() => readMetrics(file), /readMetrics .*metrics\.jsonl: line 2 is not JSON/);
});

test('bad steps, reserved names and non-numbers are rejected; closed logs refuse', () => {
  const log = MetricsLog.open(tmpDir());
  assert.throws(() => log.logStep(-1, {}), /MetricsLog\.logStep: expected step a non-negative integer, received -1/);
  assert.throws(() => log.logEpoch(1, 5, { step: 3 }), /value name "step" is reserved/);
  assert.throws(() => log.logStep(1, { loss: '1' as unknown as number }), /expected loss a number, received string/);
  log.close();
  assert.throws(() => log.logStep(1, {}), /is closed/);
});
