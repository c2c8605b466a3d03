/**
 * File names that are not valid UTF-8 (Linux names are bytes; a camera, an old archive or another locale can
 * write any): such images are read like the others, named with \xNN escapes, and a note says so, in a folder
 * and in a tar archive. Before, a folder's were silently dropped (the name decoded with U+FFFD no longer
 * opened), and in a tar two names that differ only in such bytes became one.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDataset } from '../../src/data/dataset';
import { displayName } from '../../src/data/names';
import { encode, makeTar, removeDir, rgbPattern, tempDir } from './make';

const px = (k: number): Uint8Array => rgbPattern(32, 32, k);
const bytesPath = (...parts: (string | Buffer)[]): Buffer => Buffer.concat(parts.flatMap((p, i) => [i ? Buffer.from('/') : Buffer.alloc(0), Buffer.from(p)]));
const FF_FE = Buffer.from([0xff, 0xfe]);
const FE_FF = Buffer.from([0xfe, 0xff]);

/** The pixels of image i of a split. */
const image = (s: { images: Uint8Array }, i: number): Uint8Array => s.images.subarray(i * 3072, (i + 1) * 3072);

test('displayName: valid UTF-8 as it is, each invalid byte as \\xNN', () => {
  assert.equal(displayName(Buffer.from('ün猫.png')), 'ün猫.png');
  assert.equal(displayName(Buffer.concat([FF_FE, Buffer.from('a.png')])), '\\xFF\\xFEa.png');
  // a lone continuation byte, a truncated 3-byte sequence, an overlong "/" and a UTF-16 surrogate are all invalid
  assert.equal(displayName(Buffer.from([0x61, 0x80, 0xe7, 0x8c, 0x2e, 0xc0, 0xaf, 0xed, 0xa0, 0x80])), 'a\\x80\\xE7\\x8C.\\xC0\\xAF\\xED\\xA0\\x80');
});

describe('names that are not valid UTF-8', () => {
  let dir = '';
  let cache = '';
  before(async () => {
    dir = tempDir('names');
    cache = tempDir('names-cache');
    const root = join(dir, 'root');
    for (const c of ['train/cat', 'train/dog', 'test/cat']) mkdirSync(join(root, c), { recursive: true });
    writeFileSync(join(root, 'train/cat/a.png'), await encode(px(1), 32, 32, 'png'));
    writeFileSync(bytesPath(root, 'train/cat', Buffer.concat([FF_FE, Buffer.from('b.png')])), await encode(px(2), 32, 32, 'png'));
    writeFileSync(bytesPath(root, 'train/cat', Buffer.concat([FE_FF, Buffer.from('b.png')])), await encode(px(3), 32, 32, 'png'));
    // a class folder whose own name is not UTF-8
    mkdirSync(bytesPath(root, 'train', Buffer.concat([Buffer.from('d'), FF_FE])));
    writeFileSync(bytesPath(root, 'train', Buffer.concat([Buffer.from('d'), FF_FE]), 'c.png'), await encode(px(4), 32, 32, 'png'));
    writeFileSync(join(root, 'train/dog/e.png'), await encode(px(5), 32, 32, 'png'));
    writeFileSync(join(root, 'test/cat/t.png'), await encode(px(6), 32, 32, 'png'));
  });
  after(() => {
    removeDir(dir);
    removeDir(cache);
  });

  test('in a folder: every image read and counted, named with escapes, with a note', async () => {
    const d = await openDataset(join(dir, 'root'), { cacheDir: cache, noCache: true });
    assert.deepEqual(d.classes, ['cat', 'd\\xFF\\xFE', 'dog']);
    assert.equal(d.train.n, 5, `train names: ${d.train.names}`);
    assert.deepEqual(d.badFiles, []);
    const names = d.train.names ?? [];
    for (const [name, k] of [['train/cat/\\xFF\\xFEb.png', 2], ['train/cat/\\xFE\\xFFb.png', 3], ['train/d\\xFF\\xFE/c.png', 4]] as const) {
      const i = names.indexOf(name);
      assert.ok(i >= 0, `${name} in ${names}`);
      assert.deepEqual(image(d.train, i), px(k), `the pixels of ${name}`);
    }
    assert.equal(d.train.labels[names.indexOf('train/d\\xFF\\xFE/c.png')], 1);
    assert.ok(d.notes.some((n) => /3 names are not valid UTF-8.*\\xNN/.test(n)), `notes: ${d.notes}`);
  });

  test('in a tar: two names that differ only in invalid bytes stay two images, named with escapes', async () => {
    const placeholder = { 'root/train/cat/\u0001\u0001b.png': 2, 'root/train/cat/\u0002\u0002b.png': 3 } as const;
    const files: Record<string, Uint8Array> = { 'root/train/cat/a.png': await encode(px(1), 32, 32, 'png') };
    for (const [name, k] of Object.entries(placeholder)) files[name] = await encode(px(k), 32, 32, 'png');
    const tar = await makeTar(files, false);
    // tar-stream writes names as UTF-8: put the invalid bytes in the ustar name fields, and fix the checksums
    for (const [from, to] of [[Buffer.from([1, 1]), FF_FE], [Buffer.from([2, 2]), FE_FF]]) {
      const at = tar.indexOf(from);
      to.copy(tar, at);
      const head = at - (at % 512);
      tar.fill(0x20, head + 148, head + 156);
      const sum = tar.subarray(head, head + 512).reduce((a, b) => a + b, 0);
      tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, head + 148, 'latin1');
    }
    writeFileSync(join(dir, 'names.tar'), tar);
    const d = await openDataset(join(dir, 'names.tar'), { cacheDir: cache, noCache: true });
    assert.equal(d.train.n, 3, `train names: ${d.train.names}`);
    const names = d.train.names ?? [];
    assert.deepEqual(image(d.train, names.indexOf('root/train/cat/\\xFF\\xFEb.png')), px(2));
    assert.deepEqual(image(d.train, names.indexOf('root/train/cat/\\xFE\\xFFb.png')), px(3));
    assert.ok(d.notes.some((n) => /2 names are not valid UTF-8/.test(n)), `notes: ${d.notes}`);
  });
});
