/**
 * `resnet bench --retune` forgets the machine's measured convolution choices (the cache file) before it measures, so
 * a choice first measured on a busy machine can be measured again; without the flag, saved choices are kept.
 * Runs the CLI in child processes on a cache file of its own (RESNET_CONV_CACHE).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cliCommand } from '../helpers/cli';
import { nativeAvailable } from '../../src/backend/native';

const native = nativeAvailable();
const skip = native.ok ? false : `native backend unavailable: ${native.reason}`;

test('bench --retune forgets saved convolution choices; without it they are kept', { skip }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'resnet-retune-'));
  const cache = path.join(dir, 'conv-choices.tsv');
  const bench = (...extra: string[]) => {
    const r = spawnSync(process.execPath, [...cliCommand(), 'bench', '--latency-only', ...extra], {
      encoding: 'utf8', env: { ...process.env, RESNET_CONV_CACHE: cache, RESNET_CONV_ALGO: undefined },
    });
    assert.equal(r.status, 0, r.stderr);
    return r.stderr;
  };
  try {
    bench(); // measures the batch-1 choices and writes the file, with this machine's header line
    const measured = fs.readFileSync(cache, 'utf8');
    assert.match(measured.split('\n')[0], /^# /, 'the file starts with the machine it was measured on');
    // a choice for a shape no benchmark measures: only a file read back keeps it
    const planted = 'infer|[1,7,9,9][11,7,3,3][1,1][1,1]|relu\tdirect';
    fs.writeFileSync(cache, `${measured.trimEnd()}\n${planted}\n`);
    bench();
    assert.ok(fs.readFileSync(cache, 'utf8').includes(planted), 'a plain bench keeps the saved choices');
    const said = bench('--retune');
    assert.match(said, /retune: forgot \d+ measured choices/);
    const after = fs.readFileSync(cache, 'utf8');
    assert.ok(!after.includes(planted), 'the saved choices are gone');
    assert.match(after, /^# [^\n]+\n.*infer\|\[1,/s, 'and the benchmark measured and saved its choices again');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
