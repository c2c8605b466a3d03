/**
 * Tests of `resnet data` (src/cli/commands/data.ts) through its commander registration: the JSON and text
 * reports over a small generated tree with a bad file, and --on-bad-image fail.
 * (Lives in test/data/ with the rest of the data tests.)
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Command } from 'commander';
import { registerData } from '../../src/cli/commands/data';
import { encode, removeDir, rgbPattern, tempDir, writeTree } from './make';

async function run(args: string[]): Promise<{ out: string; err: string }> {
  const program = new Command().exitOverride();
  let out = '';
  let err = '';
  registerData(program, { out: (t) => (out += t), err: (t) => (err += t) });
  await program.parseAsync(['node', 'resnet', 'data', ...args]);
  return { out, err };
}

let dir = '';
before(async () => {
  dir = tempDir('cli-data');
  const png = (k: number): Promise<Uint8Array> => encode(rgbPattern(32, 32, k), 32, 32, 'png');
  writeTree(join(dir, 'ds'), {
    'train/cat/1.png': await png(1),
    'train/cat/2.png': await png(2),
    'train/dog/3.png': await png(3),
    'train/dog/broken.jpg': Buffer.from('not a jpeg'),
    'test/cat/4.png': await png(4),
    'test/dog/5.png': await png(5),
    'test/dog/6.png': await png(6),
  });
});
after(() => removeDir(dir));

test('--json: counts per class and split, sizes, bad files with reasons, cache status', async () => {
  const cache = join(dir, 'cache');
  const { out, err } = await run(['--data', join(dir, 'ds'), '--json', '--cache-dir', cache]);
  const s = JSON.parse(out);
  assert.deepEqual(s.classes, ['cat', 'dog']);
  assert.deepEqual(s.counts, { train: { cat: 2, dog: 1 }, test: { cat: 1, dog: 2 } });
  assert.deepEqual(s.total, { train: 3, test: 3 });
  assert.deepEqual(s.sizes, { '32x32': 6 });
  assert.equal(s.badFiles.length, 1);
  assert.equal(s.badFiles[0].path, 'train/dog/broken.jpg');
  assert.match(s.badFiles[0].reason, /^not an image/);
  assert.match(err, /image train\/dog\/broken\.jpg: not an image.*\(skipped\)/);
  assert.equal(s.cache.status, 'miss');
  const again = JSON.parse((await run(['--data', join(dir, 'ds'), '--json', '--cache-dir', cache])).out);
  assert.equal(again.cache.status, 'hit');
});

test('text report and --on-bad-image fail', async () => {
  const { out } = await run(['--data', join(dir, 'ds'), '--no-cache']);
  assert.match(out, /^ {2}cat +2 +1$/m);
  assert.match(out, /^ {2}dog +1 +2$/m);
  assert.match(out, /^ {2}total +3 +3$/m);
  assert.match(out, /^bad +1 files skipped$/m);
  assert.match(out, /^ {2}train\/dog\/broken\.jpg: not an image/m);
  assert.match(out, /^cache +disabled/m);
  await assert.rejects(run(['--data', join(dir, 'ds'), '--no-cache', '--on-bad-image', 'fail']), /image train\/dog\/broken\.jpg: not an image/);
});
