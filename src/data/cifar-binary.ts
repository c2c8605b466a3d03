/**
 * The official CIFAR-10 binary release: `cifar-10-binary.tar.gz`, or its extracted folder `cifar-10-batches-bin/`
 * with data_batch_1..5.bin (train), test_batch.bin (test) and batches.meta.txt (class names, one a line).
 * Each batch file holds 10000 records of 3073 bytes: 1 label byte, then the 1024 R, 1024 G, 1024 B bytes of a
 * 32x32 image, row-major; so 30,730,000 bytes a file. Also the download of the release into the cache folder,
 * checked against the published MD5.
 *
 * Not here: the ImageFolder layout (imagefolder.ts), the decode cache (cache.ts).
 * References: A. Krizhevsky, "Learning Multiple Layers of Features from Tiny Images" (2009) and
 * https://www.cs.toronto.edu/~kriz/cifar.html (layout, MD5); torchvision.datasets.CIFAR10 (checksum habit).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, renameSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IMAGE_BYTES } from './normalize';
import type { Split } from './types';

export const CIFAR10_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz';
export const CIFAR10_MD5 = 'c32a1d4ab5d03f1284b67883e8d87530';
export const CIFAR10_ARCHIVE_NAME = 'cifar-10-binary.tar.gz';
/** The CIFAR-10 classes in label order: the release's batches.meta.txt, and the sorted folder names of ImageFolder. */
export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'] as const;
export const RECORD_BYTES = 1 + IMAGE_BYTES;
export const RECORDS_PER_FILE = 10000;
export const BATCH_FILE_BYTES = RECORD_BYTES * RECORDS_PER_FILE;
export const TRAIN_FILES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'];
export const TEST_FILE = 'test_batch.bin';
export const META_FILE = 'batches.meta.txt';

/** The folder (relative, "" for the top) that holds the batch files, or null when the listing has none. */
export function findBinaryRoot(paths: readonly string[]): string | null {
  for (const p of paths) {
    if (basename(p) === TRAIN_FILES[0]) return p.slice(0, p.length - TRAIN_FILES[0].length).replace(/\/$/, '');
  }
  return null;
}

/** Converts one batch file to NHWC images and labels, refusing a wrong size or a label outside 0..numClasses-1. */
export function parseBatchFile(bytes: Uint8Array, name: string, numClasses: number, into: Split, at: number): void {
  if (bytes.length !== BATCH_FILE_BYTES) {
    throw new Error(`cifar10 ${name}: expected ${BATCH_FILE_BYTES} bytes (${RECORDS_PER_FILE} records of ${RECORD_BYTES}), received ${bytes.length}`);
  }
  for (let r = 0; r < RECORDS_PER_FILE; r++) {
    const rec = r * RECORD_BYTES;
    const label = bytes[rec];
    if (label >= numClasses) throw new Error(`cifar10 ${name}: record ${r} has label ${label}, expected 0..${numClasses - 1}`);
    into.labels[at + r] = label;
    const out = (at + r) * IMAGE_BYTES;
    for (let p = 0; p < 1024; p++) {
      into.images[out + 3 * p] = bytes[rec + 1 + p];
      into.images[out + 3 * p + 1] = bytes[rec + 1025 + p];
      into.images[out + 3 * p + 2] = bytes[rec + 2049 + p];
    }
  }
}

/** Class names from batches.meta.txt (non-empty lines); the standard names when the file is absent. */
export function parseMeta(text: string | null, where: string): string[] {
  if (text === null) return [...CIFAR10_CLASSES];
  const names = text.split(/\r?\n/).map((s) => s.trim()).filter((s) => s !== '');
  if (names.length !== 10) throw new Error(`cifar10 ${where}/${META_FILE}: expected 10 class names, received ${names.length}`);
  return names;
}

/**
 * Builds both splits from the release's files. `read(name)` returns a file's bytes (name relative to the
 * batch folder) or null when it is missing.
 */
export async function readBinaryRelease(read: (name: string) => Promise<Uint8Array | null>, where: string): Promise<{ classes: string[]; train: Split; test: Split }> {
  const meta = await read(META_FILE);
  const classes = parseMeta(meta === null ? null : Buffer.from(meta).toString('utf8'), where);
  const load = async (files: string[]): Promise<Split> => {
    const n = files.length * RECORDS_PER_FILE;
    // pixels in a SharedArrayBuffer: the loader's worker thread reads them without a copy
    const split: Split = { n, images: new Uint8Array(new SharedArrayBuffer(n * IMAGE_BYTES)), labels: new Uint8Array(n) };
    for (let i = 0; i < files.length; i++) {
      const bytes = await read(files[i]);
      if (bytes === null) {
        throw new Error(`cifar10 ${where}: missing ${files[i]} (expected ${TRAIN_FILES.join(', ')}, ${TEST_FILE} and ${META_FILE})`);
      }
      parseBatchFile(bytes, files[i], classes.length, split, i * RECORDS_PER_FILE);
    }
    return split;
  };
  return { classes, train: await load(TRAIN_FILES), test: await load([TEST_FILE]) };
}

export async function md5File(path: string): Promise<string> {
  const h = createHash('md5');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Refuses a file named like the official archive whose MD5 is not the published one. */
export async function verifyOfficialArchive(path: string, md5 = CIFAR10_MD5): Promise<void> {
  const got = await md5File(path);
  if (got !== md5) {
    throw new Error(`cifar10 ${path}: checksum mismatch: expected MD5 ${md5}, received ${got}; the file is damaged or not the official release (delete it and try again)`);
  }
}

export interface DownloadOptions {
  /** default $RESNET_CIFAR_URL or the official address */
  url?: string;
  /** default the official archive's MD5 */
  md5?: string;
  cacheDir: string;
  log?: (msg: string) => void;
}

/**
 * Downloads the release into cacheDir/cifar-10-binary.tar.gz unless it is there already. The file appears
 * under its final name only once its MD5 matches. Offline, the error says where to put the file by hand.
 */
export async function downloadCifar10(opts: DownloadOptions): Promise<string> {
  const url = opts.url ?? process.env.RESNET_CIFAR_URL ?? CIFAR10_URL;
  const md5 = opts.md5 ?? CIFAR10_MD5;
  const dest = join(opts.cacheDir, CIFAR10_ARCHIVE_NAME);
  const byHand = `download ${CIFAR10_URL} by hand and put it at ${dest} (MD5 ${md5}), or pass --data PATH to a copy`;
  mkdirSync(opts.cacheDir, { recursive: true });
  const part = `${dest}.part-${process.pid}`;
  opts.log?.(`cifar10: downloading ${url} to ${dest}`);
  const h = createHash('md5');
  try {
    const res = await fetch(url);
    if (!res.ok || res.body === null) throw new Error(`HTTP ${res.status} ${res.statusText}`);
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    body.on('data', (c: Buffer) => h.update(c));
    await pipeline(body, createWriteStream(part));
  } catch (err) {
    rmSync(part, { force: true });
    const cause = err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
    throw new Error(`cifar10: cannot download ${url} (${cause}); ${byHand}`, { cause: err });
  }
  const got = h.digest('hex');
  if (got !== md5) {
    rmSync(part, { force: true });
    throw new Error(`cifar10: downloaded ${url} but the checksum does not match: expected MD5 ${md5}, received ${got}; ${byHand}`);
  }
  renameSync(part, dest);
  return dest;
}
