/**
 * The decode cache: a dataset decoded once, kept as one compact file so that later runs load it in a fraction
 * of a second instead of decoding 60,000 images again.
 *
 * File layout (little-endian):
 *   "RNTSDATA" | u32 format version | u32 header length L | L bytes of JSON header | zero padding to 8 bytes |
 *   for each split in header.splits order: n label bytes, then n*3072 pixel bytes (NHWC uint8, as Split.images)
 * The JSON header holds the source key (a hash of paths, sizes, mtimes), the content fingerprint, classes,
 * per-split counts and file names, bad files, original sizes and notes. A key that differs from the source's
 * makes the file stale. Files are written to a temporary name, fsynced, then renamed, so a crash never leaves
 * half a cache.
 *
 * Not here: computing keys and fingerprints or deciding when to use the cache (dataset.ts).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { IMAGE_BYTES } from './normalize';
import type { BadFile, CifarData, Split } from './types';

const MAGIC = 'RNTSDATA';
export const CACHE_FORMAT_VERSION = 2;

export { defaultCacheDir } from '../util/paths';

/** The cache file for a source and the decode options that change its content. */
export function cacheFilePath(cacheDir: string, key: object): string {
  const h = createHash('sha256').update(JSON.stringify({ v: CACHE_FORMAT_VERSION, ...key })).digest('hex');
  return join(cacheDir, `data-${h.slice(0, 16)}.bin`);
}

interface CacheHeader {
  sourceKey: string;
  fingerprint: string;
  classes: string[];
  splits: { name: 'train' | 'test'; n: number; names?: string[] }[];
  badFiles: BadFile[];
  sizes: Record<string, number>;
  resized: number;
  notes: string[];
  source: CifarData['source'];
}

/** What a cache file holds (beside the source key): everything of CifarData but the cache status. */
export type CachedData = Omit<CifarData, 'cache'>;

const pad8 = (n: number): number => (8 - (n % 8)) % 8;

/** Writes the dataset, decoded from the source with this key, to `path` atomically (temporary file, fsync, rename). */
export function writeCache(path: string, sourceKey: string, d: CachedData): void {
  const header: CacheHeader = {
    sourceKey,
    fingerprint: d.fingerprint,
    classes: d.classes,
    splits: [
      { name: 'train', n: d.train.n, names: d.train.names },
      { name: 'test', n: d.test.n, names: d.test.names },
    ],
    badFiles: d.badFiles,
    sizes: d.sizes,
    resized: d.resized,
    notes: d.notes,
    source: d.source,
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const pre = Buffer.alloc(16 + json.length + pad8(16 + json.length));
  pre.write(MAGIC, 0, 'ascii');
  pre.writeUInt32LE(CACHE_FORMAT_VERSION, 8);
  pre.writeUInt32LE(json.length, 12);
  json.copy(pre, 16);
  mkdirSync(join(path, '..'), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fd = openSync(tmp, 'w');
  try {
    writeAll(fd, pre);
    for (const s of [d.train, d.test]) {
      writeAll(fd, s.labels.subarray(0, s.n));
      writeAll(fd, s.images.subarray(0, s.n * IMAGE_BYTES));
    }
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    rmSync(tmp, { force: true });
    throw err;
  }
}

function writeAll(fd: number, buf: Uint8Array): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

function readExactly(fd: number, into: Uint8Array, position: number, path: string): void {
  let off = 0;
  while (off < into.length) {
    const got = readSync(fd, into, off, into.length - off, position + off);
    if (got === 0) throw new Error(`cache ${path}: file ends early (expected ${into.length - off} more bytes at ${position + off})`);
    off += got;
  }
}

export type CacheRead =
  | { status: 'hit'; data: CachedData }
  | { status: 'missing' }
  | { status: 'stale' }
  | { status: 'corrupt'; reason: string };

/**
 * Loads a cache file if its source key equals `sourceKey`. Pixels land in SharedArrayBuffers so that the
 * loader's worker thread can read them without a copy.
 */
export function readCache(path: string, sourceKey: string): CacheRead {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return { status: 'missing' };
  }
  try {
    const pre = Buffer.alloc(16);
    readExactly(fd, pre, 0, path);
    if (pre.toString('ascii', 0, 8) !== MAGIC) return { status: 'corrupt', reason: 'not a resnet-ts data cache (bad magic)' };
    const version = pre.readUInt32LE(8);
    if (version !== CACHE_FORMAT_VERSION) return { status: 'stale' };
    const json = Buffer.alloc(pre.readUInt32LE(12));
    readExactly(fd, json, 16, path);
    const header = JSON.parse(json.toString('utf8')) as CacheHeader;
    if (header.sourceKey !== sourceKey) return { status: 'stale' };
    let pos = 16 + json.length + pad8(16 + json.length);
    const splits: Split[] = header.splits.map((s) => {
      const labels = new Uint8Array(s.n);
      const images = new Uint8Array(new SharedArrayBuffer(s.n * IMAGE_BYTES));
      readExactly(fd, labels, pos, path);
      readExactly(fd, images, pos + s.n, path);
      pos += s.n * (1 + IMAGE_BYTES);
      return { n: s.n, images, labels, names: s.names };
    });
    const { classes, fingerprint, badFiles, sizes, resized, notes, source } = header;
    return { status: 'hit', data: { classes, train: splits[0], test: splits[1], fingerprint, badFiles, sizes, resized, notes, source } };
  } catch (err) {
    return { status: 'corrupt', reason: err instanceof Error ? err.message : String(err) };
  } finally {
    closeSync(fd);
  }
}
