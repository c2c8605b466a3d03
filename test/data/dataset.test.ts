/**
 * Tests of openDataset over ImageFolder trees in folders and archives (imagefolder.ts, archive.ts, dataset.ts,
 * cache.ts): label mapping as torchvision's, every image format and extension case, resizing, bad files
 * (skipped, counted and named), the decode cache (hit, stale, corrupt, atomic) and clear errors.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readdirSync, rmSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDataset } from '../../src/data/dataset';
import { decodeSplit, planImageFolder } from '../../src/data/imagefolder';
import type { CifarData } from '../../src/data/types';
import fixture from './fixtures/pil_fixture.json';
import { encode, makeBmp, makePng, makeTar, removeDir, rgbPattern, tempDir, writeTree } from './make';

const px = (k: number): Uint8Array => rgbPattern(32, 32, k);

/** A small tree: 3 classes, several formats and extension cases, a nested folder, ignored files. */
async function goodTree(): Promise<Record<string, Uint8Array | null>> {
  const r = fixture.resize[0];
  return {
    'train/dog/b.PNG': await encode(px(1), 32, 32, 'png'),
    'train/dog/a.webp': await encode(px(2), 32, 32, 'webp'),
    'train/dog/sub/0.png': await encode(px(3), 32, 32, 'png'),
    'train/dog/z.tif': await encode(px(4), 32, 32, 'tiff'),
    'train/dog/\u00fcn\u00ef \u732b.png': await encode(px(11), 32, 32, 'png'),
    'train/cat/x.bmp': makeBmp({ width: 32, height: 32, rgb: px(5) }),
    'train/cat/big.png': await encode(rgbPattern(r.width, r.height, r.k), r.width, r.height, 'png'),
    'train/cat/notes.txt': Buffer.from('not an image'),
    'train/cat/.DS_Store': Buffer.from('junk'),
    'train/cat/._x.bmp': Buffer.from('AppleDouble junk'),
    'train/.ipynb_checkpoints/y.png': await encode(px(6), 32, 32, 'png'),
    'train/bird/q.JPEG': await encode(px(7), 32, 32, 'jpeg'),
    'train/bird/r.gif': await encode(new Uint8Array(32 * 32 * 3).fill(255), 32, 32, 'gif'),
    'test/cat/t.png': await encode(px(8), 32, 32, 'png'),
    'test/dog/u.png': await encode(px(9), 32, 32, 'png'),
  };
}

const image = (d: CifarData['train'], i: number): Uint8Array => d.images.subarray(i * 3072, (i + 1) * 3072);

describe('ImageFolder in a folder', () => {
  let dir = '';
  let cache = '';
  before(async () => {
    dir = tempDir('imf');
    cache = tempDir('imf-cache');
    writeTree(join(dir, 'root'), await goodTree());
  });
  after(() => {
    removeDir(dir);
    removeDir(cache);
  });

  test('classes sorted, labels by folder, files in torchvision order, pixels decoded or resized as Pillow', async () => {
    const d = await openDataset(join(dir, 'root'), { cacheDir: cache, noCache: true });
    assert.deepEqual(d.classes, ['bird', 'cat', 'dog']);
    assert.deepEqual(d.train.names, ['train/bird/q.JPEG', 'train/bird/r.gif', 'train/cat/big.png', 'train/cat/x.bmp', 'train/dog/a.webp', 'train/dog/b.PNG', 'train/dog/z.tif', 'train/dog/\u00fcn\u00ef \u732b.png', 'train/dog/sub/0.png']);
    assert.deepEqual([...d.train.labels], [0, 0, 1, 1, 2, 2, 2, 2, 2]);
    assert.deepEqual(d.test.names, ['test/cat/t.png', 'test/dog/u.png']);
    assert.deepEqual([...d.test.labels], [1, 2]);
    assert.deepEqual(image(d.train, 2), new Uint8Array(Buffer.from(fixture.resize[0].out, 'base64')), 'resized like PIL');
    assert.deepEqual(image(d.train, 3), px(5), 'bmp');
    assert.deepEqual(image(d.train, 4), px(2), 'webp');
    assert.deepEqual(image(d.train, 6), px(4), 'tiff');
    assert.deepEqual(image(d.test, 1), px(9));
    assert.equal(d.resized, 1);
    assert.deepEqual(image(d.train, 7), px(11), 'unicode name');
    assert.deepEqual(d.sizes, { '32x32': 10, '48x40': 1 });
    assert.deepEqual(d.badFiles, []);
    assert.equal(d.source.kind, 'imagefolder');
    assert.ok(d.notes.some((n) => /ignored 1 files without an image extension/.test(n)), d.notes.join('; '));
  });

  test('a symlink loop inside a class folder is listed once and does not hang', async () => {
    const root = join(dir, 'looped');
    writeTree(root, { 'train/a/1.png': await encode(px(1), 32, 32, 'png'), 'train/b/2.png': await encode(px(2), 32, 32, 'png') });
    symlinkSync(join(root, 'train'), join(root, 'train', 'a', 'loop'));
    const d = await openDataset(root, { noCache: true });
    assert.deepEqual(d.train.names, ['train/a/1.png', 'train/b/2.png']);
  });

  test('strictSize refuses the 48x40 image as a bad file', async () => {
    const d = await openDataset(join(dir, 'root'), { noCache: true, strictSize: true });
    assert.equal(d.train.n, 8);
    assert.deepEqual(d.badFiles, [{ path: 'train/cat/big.png', reason: 'expected 32x32, received 48x40 (--strict-size)' }]);
  });

  test('a single <class>/<image> tree is one split (train), no test', async () => {
    const logs: string[] = [];
    const d = await openDataset(join(dir, 'root', 'train'), { noCache: true, log: (m) => logs.push(m) });
    assert.deepEqual(d.classes, ['bird', 'cat', 'dog']);
    assert.equal(d.train.n, 9);
    assert.equal(d.test.n, 0);
    assert.ok(logs.some((l) => /one split/.test(l)));
  });

  test('decode cache: miss, hit with identical data, stale after a change, no temporary files left', async () => {
    const root = join(dir, 'root');
    const first = await openDataset(root, { cacheDir: cache });
    assert.equal(first.cache.status, 'miss');
    const second = await openDataset(root, { cacheDir: cache });
    assert.equal(second.cache.status, 'hit');
    assert.equal(second.cache.path, first.cache.path);
    for (const k of ['classes', 'fingerprint', 'badFiles', 'sizes', 'resized', 'notes', 'source'] as const) assert.deepEqual(second[k], first[k], k);
    for (const s of ['train', 'test'] as const) {
      assert.deepEqual(second[s].images, first[s].images);
      assert.deepEqual(second[s].labels, first[s].labels);
      assert.deepEqual(second[s].names, first[s].names);
    }
    assert.deepEqual(readdirSync(cache), [readdirSync(cache).find((f) => f.startsWith('data-') && f.endsWith('.bin'))]);
    // a changed file (new content, new mtime) makes the cache stale
    writeFileSync(join(root, 'test/dog/u.png'), await encode(px(10), 32, 32, 'png'));
    utimesSync(join(root, 'test/dog/u.png'), new Date(), new Date(Date.now() + 5000));
    const third = await openDataset(root, { cacheDir: cache });
    assert.equal(third.cache.status, 'stale');
    assert.deepEqual(image(third.test, 1), px(10));
    assert.notEqual(third.fingerprint, first.fingerprint);
    // a damaged cache file is decoded again, with a message
    truncateSync(third.cache.path!, 100);
    const logs: string[] = [];
    const fourth = await openDataset(root, { cacheDir: cache, log: (m) => logs.push(m) });
    assert.equal(fourth.cache.status, 'stale');
    assert.ok(logs.some((l) => l.startsWith('cache ')), logs.join('\n'));
    assert.deepEqual(fourth.train.images, first.train.images);
    assert.equal((await openDataset(root, { cacheDir: cache, noCache: true })).cache.status, 'disabled');
  });

  test('the fingerprint is the content: a copy elsewhere with new mtimes matches (decoded afresh), one pixel more does not', async () => {
    const root = join(dir, 'root');
    const first = await openDataset(root, { cacheDir: cache });
    const copy = join(dir, 'copy');
    cpSync(root, copy, { recursive: true });
    const later = new Date(Date.now() + 60_000);
    for (const f of ['train/dog/b.PNG', 'test/cat/t.png']) utimesSync(join(copy, f), later, later);
    const copied = await openDataset(copy, { cacheDir: cache });
    assert.equal(copied.cache.status, 'miss', 'another path is another cache entry');
    assert.equal(copied.fingerprint, first.fingerprint);
    assert.equal((await openDataset(copy, { cacheDir: cache })).fingerprint, first.fingerprint, 'read back from the cache');
    assert.deepEqual(copied.test.names, ['test/cat/t.png', 'test/dog/u.png']);
    const changed = image(copied.test, 1).slice();
    changed[0] ^= 1; // one bit of one pixel (PNG keeps it exactly)
    writeFileSync(join(copy, 'test/dog/u.png'), await encode(changed, 32, 32, 'png'));
    utimesSync(join(copy, 'test/dog/u.png'), later, new Date(Date.now() + 120_000));
    const edited = await openDataset(copy, { cacheDir: cache });
    assert.equal(edited.cache.status, 'stale');
    assert.notEqual(edited.fingerprint, first.fingerprint);
  });
});

describe('ImageFolder in an archive', () => {
  let dir = '';
  before(async () => {
    dir = tempDir('imf-tar');
    const files: Record<string, Uint8Array | null> = { 'mydata/': null };
    for (const [k, v] of Object.entries(await goodTree())) files[`mydata/${k}`] = v;
    writeFileSync(join(dir, 'd.tar.gz'), await makeTar(files, true));
    writeFileSync(join(dir, 'd.tar'), await makeTar(files, false));
    writeTree(join(dir, 'folder'), await goodTree());
  });
  after(() => removeDir(dir));

  test('.tar.gz and .tar give the same dataset as the folder, root found inside', async () => {
    const ref = await openDataset(join(dir, 'folder'), { noCache: true });
    for (const name of ['d.tar.gz', 'd.tar']) {
      const d = await openDataset(join(dir, name), { noCache: true });
      assert.equal(d.source.kind, 'imagefolder-archive');
      assert.equal(d.source.root, 'mydata');
      assert.deepEqual(d.classes, ref.classes);
      assert.deepEqual(d.train.names, ref.train.names!.map((n) => `mydata/${n}`));
      assert.deepEqual(d.train.labels, ref.train.labels);
      assert.deepEqual(d.train.images, ref.train.images);
      assert.deepEqual(d.test.images, ref.test.images);
      assert.equal(d.fingerprint, ref.fingerprint, 'same content, same fingerprint, whatever the container');
    }
    assert.match(ref.fingerprint, /^sha256:[0-9a-f]{64}$/);
  });

  test('a truncated archive is refused with the archive named', async () => {
    const full = await makeTar({ 'r/train/a/x.png': await encode(px(1), 32, 32, 'png') }, true);
    writeFileSync(join(dir, 'cut.tar.gz'), full.subarray(0, full.length - 30));
    await assert.rejects(openDataset(join(dir, 'cut.tar.gz'), { noCache: true }), /^Error: archive .*cut\.tar\.gz: cannot read it as a tar or tar\.gz/);
  });
});

describe('bad files', () => {
  let dir = '';
  before(async () => {
    dir = tempDir('imf-bad');
    const jpg = await encode(rgbPattern(48, 48, 3), 48, 48, 'jpeg');
    const bomb = makePng({ width: 60000, height: 60000, colorType: 2, bitDepth: 8, samples: new Uint8Array(0), bombOnly: true });
    writeTree(join(dir, 'bad'), {
      'train/a/good1.png': await encode(px(1), 32, 32, 'png'),
      'train/a/truncated.jpg': jpg.subarray(0, Math.floor(jpg.length * 0.6)),
      'train/a/empty.jpg': new Uint8Array(0),
      'train/b/text.jpg': Buffer.from('hello, not a picture'),
      'train/b/page.png': Buffer.from('<!DOCTYPE html><html><body>404</body></html>'),
      'train/b/good2.png': await encode(px(2), 32, 32, 'png'),
      'train/b/bomb.png': bomb,
      'test/a/good3.png': await encode(px(3), 32, 32, 'png'),
    });
  });
  after(() => removeDir(dir));

  test('skip (default): each bad file named with its reason, counted, the good ones kept with their labels', async () => {
    const logs: string[] = [];
    const d = await openDataset(join(dir, 'bad'), { noCache: true, log: (m) => logs.push(m) });
    assert.equal(d.train.n, 2);
    assert.deepEqual([...d.train.labels], [0, 1]);
    assert.deepEqual(image(d.train, 0), px(1));
    assert.deepEqual(image(d.train, 1), px(2));
    const reasons = Object.fromEntries(d.badFiles.map((b) => [b.path, b.reason]));
    assert.deepEqual(Object.keys(reasons).sort(), ['train/a/empty.jpg', 'train/a/truncated.jpg', 'train/b/bomb.png', 'train/b/page.png', 'train/b/text.jpg']);
    assert.match(reasons['train/a/empty.jpg'], /^empty file/);
    assert.match(reasons['train/a/truncated.jpg'], /^truncated JPEG/);
    assert.match(reasons['train/b/text.jpg'], /^not an image/);
    assert.match(reasons['train/b/page.png'], /<!DOCTYPE/);
    assert.match(reasons['train/b/bomb.png'], /60000x60000/);
    assert.ok(logs.includes(`image train/a/empty.jpg: ${reasons['train/a/empty.jpg']} (skipped)`), logs.join('\n'));
  });

  test('fail: the first bad file stops the run, named', async () => {
    await assert.rejects(openDataset(join(dir, 'bad'), { noCache: true, onBadImage: 'fail' }), /^ImageDecodeError: image train\/(a|b)\/\S+: /);
  });

  test('fail after a cache made with skip still refuses', async () => {
    const cache = tempDir('bad-cache');
    try {
      await openDataset(join(dir, 'bad'), { cacheDir: cache });
      await assert.rejects(openDataset(join(dir, 'bad'), { cacheDir: cache, onBadImage: 'fail' }), /5 bad files \(recorded in the cache\)/);
    } finally {
      removeDir(cache);
    }
  });

  test('a file that vanishes or cannot be read after listing is a bad file, not a crash', async () => {
    const plan = planImageFolder({ files: [{ path: 'train/a/1.png', size: 1, mtimeMs: 0 }, { path: 'train/a/2.png', size: 1, mtimeMs: 0 }], dirs: [] }, 'mem');
    const good = await encode(px(1), 32, 32, 'png');
    const read = async (p: string): Promise<Uint8Array> => {
      if (p.endsWith('2.png')) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${p}'`), { code: 'ENOENT' });
      return good;
    };
    const out = await decodeSplit(plan.train, read, { onBadImage: 'skip', strictSize: false, log: () => undefined });
    assert.equal(out.split.n, 1);
    assert.match(out.badFiles[0].reason, /^cannot read file \(ENOENT/);
  });

  test('an empty class folder, a test split with no images, all images bad, unknown test classes: clear errors', async () => {
    const e = tempDir('imf-err');
    try {
      const ok = await encode(px(1), 32, 32, 'png');
      writeTree(join(e, 'emptyclass'), { 'train/a/x.png': ok, 'train/b': null });
      await assert.rejects(openDataset(join(e, 'emptyclass'), { noCache: true }), /imagefolder .*emptyclass\/train\/b: class folder has no image files/);
      writeTree(join(e, 'emptytest'), { 'train/a/x.png': ok, 'test/README': Buffer.from('x') });
      await assert.rejects(openDataset(join(e, 'emptytest'), { noCache: true }), /test: split has no images/);
      writeTree(join(e, 'allbad'), { 'train/a/x.png': new Uint8Array(0) });
      await assert.rejects(openDataset(join(e, 'allbad'), { noCache: true }), /no image of the split could be decoded \(1 bad files\)/);
      writeTree(join(e, 'unknown'), { 'train/a/x.png': ok, 'test/zebra/y.png': ok });
      await assert.rejects(openDataset(join(e, 'unknown'), { noCache: true }), /classes not in train: zebra/);
      writeTree(join(e, 'flat'), { 'x.png': ok });
      await assert.rejects(openDataset(join(e, 'flat'), { noCache: true }), /no ImageFolder tree found/);
      await assert.rejects(openDataset(join(e, 'nothing-here'), { noCache: true }), /no such file or folder/);
      writeFileSync(join(e, 'file.zip'), 'PK');
      await assert.rejects(openDataset(join(e, 'file.zip'), { noCache: true }), /expected a folder, a \.tar/);
    } finally {
      rmSync(e, { recursive: true, force: true });
    }
  });
});
