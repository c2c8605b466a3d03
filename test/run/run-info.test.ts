/**
 * Tests for run.json (src/run/run-info.ts): what is saved reads back, a folder without one reads as null, a file
 * that is not a JSON object is an error that names it, and saving leaves no temp file behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RUN_INFO_FILE, readRunInfo, saveRunInfo } from '../../src/run/run-info';
import { tempDirMaker } from '../helpers/tmp';

const tmpDir = tempDirMaker('resnet-runinfo');

test('saved run info reads back, indented, and replaces the previous one whole', () => {
  const run = tmpDir();
  saveRunInfo(run, { config: { epochs: 2 }, classes: ['a', 'b'], precision: 'fp32' });
  saveRunInfo(run, { config: { epochs: 3 }, classes: ['a', 'b'], precision: 'bf16' });
  assert.deepEqual(readRunInfo(run), { config: { epochs: 3 }, classes: ['a', 'b'], precision: 'bf16' });
  const text = fs.readFileSync(path.join(run, RUN_INFO_FILE), 'utf8');
  assert.ok(text.startsWith('{\n  "config"'));
  assert.ok(text.endsWith('}\n'));
  assert.deepEqual(fs.readdirSync(run), [RUN_INFO_FILE]);
});

test('a folder without run.json reads as null; one that is not a JSON object is an error naming the file', () => {
  const run = tmpDir();
  assert.equal(readRunInfo(run), null);
  fs.writeFileSync(path.join(run, RUN_INFO_FILE), '[1, 2]\n');
  assert.throws(() => readRunInfo(run), /readRunInfo: expected .*run\.json to hold a JSON object, received an array/);
  fs.writeFileSync(path.join(run, RUN_INFO_FILE), '{"config": ');
  assert.throws(() => readRunInfo(run), SyntaxError);
});
