/**
 * Tests of the official CIFAR-10 binary release reader and download (cifar-binary.ts through openDataset):
 * files generated in the official layout (full size: 10000 records of 3073 bytes), folder and tar.gz, the
 * refusals (size, label, checksum), and the download against a local HTTP server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { CIFAR10_ARCHIVE_NAME, downloadCifar10 } from '../../src/data/cifar-binary';
import { openDataset } from '../../src/data/dataset';
import type { CifarData } from '../../src/data/types';
import { makeTar, removeDir, tempDir } from './make';

const REC = 3073;
const N = 10000;
const CLASSES = ['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8', 'c9'];

/** Batch file f: record r has label (r*7+f)%10; its R/G/B planes hold (p+r)%256, (p*3+f)%256, (r*5)%256. */
const made = new Map<number, Buffer>();
function batchFile(f: number): Buffer {
  const hit = made.get(f);
  if (hit) return Buffer.from(hit);
  const ramp = Buffer.alloc(1024 + 256);
  for (let i = 0; i < ramp.length; i++) ramp[i] = i % 256;
  const green = Buffer.alloc(1024);
  for (let p = 0; p < 1024; p++) green[p] = (p * 3 + f) % 256;
  const b = Buffer.alloc(N * REC);
  for (let r = 0; r < N; r++) {
    const o = r * REC;
    b[o] = (r * 7 + f) % 10;
    ramp.copy(b, o + 1, r % 256, (r % 256) + 1024);
    green.copy(b, o + 1025);
    b.fill((r * 5) % 256, o + 2049, o + REC);
  }
  made.set(f, b);
  return Buffer.from(b);
}

const NAMES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin'];

const BASE = { dir: '' };

/** Writes a release into dir: files from `change` when it returns one, else hard links to the base release. */
function writeRelease(dir: string, change?: (name: string, b: Buffer) => Buffer | null): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'batches.meta.txt'), `${CLASSES.join('\n')}\n\n`);
  NAMES.forEach((name, f) => {
    const b = change ? change(name, batchFile(f)) : batchFile(f);
    if (b === null) return;
    if (BASE.dir !== '' && b.equals(batchFile(f))) linkSync(join(BASE.dir, name), join(dir, name));
    else writeFileSync(join(dir, name), b);
  });
}

/** pixel (y, x) of record r of file f, in HWC as the reader must give it */
function expectedPixel(f: number, r: number, p: number): number[] {
  return [(p + r) % 256, (p * 3 + f) % 256, (r * 5) % 256];
}

describe('CIFAR-10 binary release', () => {
  let dir = '';
  before(() => {
    dir = tempDir('cifar-bin');
    writeRelease(join(dir, 'rel', 'cifar-10-batches-bin'));
    BASE.dir = join(dir, 'rel', 'cifar-10-batches-bin');
  });
  after(() => removeDir(dir));

  let folderData: CifarData | null = null;

  test('the extracted folder: 50000/10000, classes from batches.meta.txt, labels and CHW planes to HWC', async () => {
    const d = await openDataset(join(dir, 'rel'), { noCache: true });
    folderData = d;
    assert.equal(d.source.kind, 'cifar-binary');
    assert.deepEqual(d.classes, CLASSES);
    assert.equal(d.train.n, 50000);
    assert.equal(d.test.n, 10000);
    for (const [split, f, r] of [['train', 0, 0], ['train', 2, 1234], ['train', 4, 9999], ['test', 5, 42]] as const) {
      const i = split === 'train' ? f * N + r : r;
      assert.equal(d[split].labels[i], (r * 7 + f) % 10, `${split} label ${i}`);
      for (const p of [0, 1, 31, 32, 555, 1023]) {
        assert.deepEqual([...d[split].images.subarray(i * 3072 + 3 * p, i * 3072 + 3 * p + 3)], expectedPixel(f, r, p), `${split} ${i} pixel ${p}`);
      }
    }
  });

  test('a tar.gz of it, under another name, gives the same data', async () => {
    const files: Record<string, Uint8Array> = {};
    for (const name of [...NAMES, 'batches.meta.txt']) files[`cifar-10-batches-bin/${name}`] = readFileSync(join(dir, 'rel', 'cifar-10-batches-bin', name));
    writeFileSync(join(dir, 'mine.tar.gz'), await makeTar(files, true));
    const a = await openDataset(join(dir, 'mine.tar.gz'), { noCache: true });
    const b = folderData ?? (await openDataset(join(dir, 'rel'), { noCache: true }));
    assert.equal(a.source.kind, 'cifar-binary-archive');
    assert.deepEqual(a.train.labels, b.train.labels);
    assert.deepEqual(a.train.images, b.train.images);
    assert.deepEqual(a.test.images, b.test.images);
    // the same bytes under the official name must carry the official MD5
    copyFileSync(join(dir, 'mine.tar.gz'), join(dir, CIFAR10_ARCHIVE_NAME));
    await assert.rejects(openDataset(join(dir, CIFAR10_ARCHIVE_NAME), { noCache: true }), /checksum mismatch: expected MD5 c32a1d4ab5d03f1284b67883e8d87530, received [0-9a-f]{32}/);
  });

  test('refused, naming the file and the reason: wrong size, label above 9, missing file', async () => {
    writeRelease(join(dir, 'short'), (name, b) => (name === 'data_batch_3.bin' ? b.subarray(0, b.length - 1) : b));
    await assert.rejects(openDataset(join(dir, 'short'), { noCache: true }), /cifar10 data_batch_3\.bin: expected 30730000 bytes \(10000 records of 3073\), received 30729999/);
    writeRelease(join(dir, 'label'), (name, b) => {
      if (name === 'test_batch.bin') b[777 * REC] = 12;
      return b;
    });
    await assert.rejects(openDataset(join(dir, 'label'), { noCache: true }), /cifar10 test_batch\.bin: record 777 has label 12, expected 0\.\.9/);
    writeRelease(join(dir, 'missing'), (name, b) => (name === 'test_batch.bin' ? null : b));
    await assert.rejects(openDataset(join(dir, 'missing'), { noCache: true }), /missing test_batch\.bin/);
  });
});

describe('download of the release', () => {
  let server: Server;
  let base = '';
  let dir = '';
  const body = Buffer.from('pretend archive bytes '.repeat(100));
  before(async () => {
    dir = tempDir('cifar-dl');
    server = createServer((req, res) => {
      if (req.url === '/cifar-10-binary.tar.gz') res.end(body);
      else res.writeHead(404).end('no');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    removeDir(dir);
  });

  test('downloads into the cache folder and keeps the file only when the MD5 matches', async () => {
    const md5 = createHash('md5').update(body).digest('hex');
    const cacheDir = join(dir, 'ok');
    const path = await downloadCifar10({ url: `${base}/cifar-10-binary.tar.gz`, md5, cacheDir });
    assert.equal(path, join(cacheDir, CIFAR10_ARCHIVE_NAME));
    assert.deepEqual(readFileSync(path), body);
    const bad = join(dir, 'bad');
    await assert.rejects(downloadCifar10({ url: `${base}/cifar-10-binary.tar.gz`, md5: '0'.repeat(32), cacheDir: bad }), /checksum does not match: expected MD5 0{32}, received [0-9a-f]{32}/);
    assert.deepEqual(readdirSync(bad), [], 'no partial or unverified file left');
  });

  test('--data cifar10 uses RESNET_CIFAR_URL and refuses a file that is not the official release', async () => {
    const saved = process.env.RESNET_CIFAR_URL;
    process.env.RESNET_CIFAR_URL = `${base}/cifar-10-binary.tar.gz`;
    try {
      const cacheDir = join(dir, 'env');
      await assert.rejects(openDataset('cifar10', { cacheDir }), /expected MD5 c32a1d4ab5d03f1284b67883e8d87530/);
      assert.equal(existsSync(join(cacheDir, CIFAR10_ARCHIVE_NAME)), false);
      process.env.RESNET_CIFAR_URL = `${base}/missing`;
      await assert.rejects(openDataset('cifar10', { cacheDir }), /cannot download .*\(HTTP 404/);
    } finally {
      if (saved === undefined) delete process.env.RESNET_CIFAR_URL;
      else process.env.RESNET_CIFAR_URL = saved;
    }
  });

  test('offline: the error says where to put the file by hand', async () => {
    const cacheDir = join(dir, 'offline');
    // a port nobody listens on: open one, note it, close it
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const url = `http://127.0.0.1:${port}/cifar-10-binary.tar.gz`;
    const err = await downloadCifar10({ url, cacheDir }).then(
      () => assert.fail('expected the download to fail'),
      (e: Error) => e,
    );
    assert.ok(err.message.startsWith(`cifar10: cannot download ${url} (`), err.message);
    assert.match(err.message, /ECONNREFUSED/);
    assert.ok(err.message.includes(`put it at ${join(cacheDir, CIFAR10_ARCHIVE_NAME)} (MD5 c32a1d4ab5d03f1284b67883e8d87530)`), err.message);
    assert.ok(err.message.includes('https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz'));
  });
});
