/**
 * Tests for writeFileAtomic (a writer that fails mid-way leaves the old file byte-identical
 * and no temp file behind).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic, tempNameFor, tempFilePid } from '../../src/run/atomic';
import { tempDirMaker } from '../helpers/tmp';

const tmpDir = tempDirMaker('resnet-atomic');

test('writes new content, replacing the old, from bytes or a string', () => {
  const dir = tmpDir();
  const f = path.join(dir, 'a.bin');
  writeFileAtomic(f, new Uint8Array([1, 2, 3]));
  assert.deepEqual([...fs.readFileSync(f)], [1, 2, 3]);
  writeFileAtomic(f, 'héllo');
  assert.equal(fs.readFileSync(f, 'utf8'), 'héllo');
  assert.deepEqual(fs.readdirSync(dir), ['a.bin']);
});

test('a write failing mid-way leaves the old file byte-identical and no temp file', () => {
  const dir = tmpDir();
  const f = path.join(dir, 'ckpt.bin');
  const old = Buffer.from('the old, complete checkpoint');
  fs.writeFileSync(f, old);
  const big = new Uint8Array(9 << 20).fill(7); // three chunks: fail on the second, after bytes hit the temp file
  let calls = 0;
  let tmpSeen = '';
  const failing = (fd: number, b: Uint8Array, o: number, l: number): number => {
    if (++calls === 2) {
      tmpSeen = fs.readdirSync(dir).find((n) => n !== 'ckpt.bin') ?? '';
      throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    }
    return fs.writeSync(fd, b, o, l);
  };
  assert.throws(() => writeFileAtomic(f, big, { write: failing }), (err: Error & { code?: string }) => {
    assert.match(err.message, /^cannot write .*ckpt\.bin: the disk is full; the file was left unchanged$/);
    assert.equal(err.code, 'ENOSPC');
    return true;
  });
  assert.equal(calls, 2);
  assert.notEqual(tmpSeen, '', 'the temp file existed while writing');
  assert.equal(tempFilePid(tmpSeen), process.pid);
  assert.ok(fs.readFileSync(f).equals(old));
  assert.deepEqual(fs.readdirSync(dir), ['ckpt.bin']);
});

test('a failed first write to a new path leaves nothing behind', () => {
  const dir = tmpDir();
  const f = path.join(dir, 'new.bin');
  assert.throws(() => writeFileAtomic(f, 'x', { write: () => 0 }), /write returned 0 at byte 0 of 1/);
  assert.deepEqual(fs.readdirSync(dir), []);
});

test('a missing folder is an error naming the target, in words (no raw ENOENT on the temp file)', () => {
  const f = path.join(tmpDir(), 'no', 'such', 'x.bin');
  assert.throws(() => writeFileAtomic(f, 'x'), (err: Error & { code?: string }) => {
    assert.equal(err.message, `cannot write ${f}: its folder does not exist (was it moved or deleted?); the file was left unchanged`);
    assert.equal(err.code, 'ENOENT');
    return true;
  });
});

test('temp names are dot files in the target folder carrying our pid', () => {
  const t = tempNameFor('/a/b/epoch-0001.ckpt');
  assert.equal(path.dirname(t), '/a/b');
  assert.match(path.basename(t), /^\.epoch-0001\.ckpt\.tmp-\d+-[0-9a-f]{8}$/);
  assert.equal(tempFilePid(path.basename(t)), process.pid);
  assert.equal(tempFilePid('epoch-0001.ckpt'), null);
});
