/**
 * From a file name to the model's input: read the file (regular files only, with a size cap), decode and
 * preprocess it (src/data's preprocessForModel: RGB, resize to 32x32, the seed's normalisation), and say why
 * when that fails. Used by `resnet predict` on the main thread (one file, the interactive loop) and by the
 * decode worker (decode-worker.ts) for a whole batch of files.
 *
 * What it is not: the model. Nothing here throws for a bad file; the reason comes back as a string that
 * does not repeat the file name (the result that carries it already names the file).
 */
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import { decodePlainJpegs, ImageDecodeError, IMAGE_SIZE, normalizeInto, preprocessForModel } from '../data';
import { mapLimit } from '../util/concurrency';

/** Largest file the CLI reads into memory; far above any real photo, it only stops accidents. */
export const MAX_FILE_BYTES = 256 * 1024 * 1024;

/** Values of one preprocessed input: [3,32,32]. */
export const INPUT_VALUES = 3 * 32 * 32;

export type InputResult = { readonly x: Float32Array; readonly error?: undefined } | { readonly error: string; readonly x?: undefined };

export function describeFsError(op: string, err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e && e.code === 'ENOENT') return `${op}: no such file or directory`;
  if (e && (e.code === 'EACCES' || e.code === 'EPERM')) return `${op}: permission denied`;
  return `${op}: ${e && e.message ? e.message : String(err)}`;
}

type FileBytes = { readonly bytes: Uint8Array; readonly error?: undefined } | { readonly error: string; readonly bytes?: undefined };

/** Reads one regular file of at most MAX_FILE_BYTES; never throws, only reports. */
async function readFileBytes(file: string): Promise<FileBytes> {
  try {
    const refused = refusal(await fsp.stat(file));
    return refused ? { error: refused } : { bytes: await fsp.readFile(file) };
  } catch (err) {
    return { error: describeFsError('read', err) };
  }
}

/** Why a file with these stats is not read (not a regular file, or too large); null when it is. */
function refusal(st: fs.Stats): string | null {
  if (!st.isFile()) return 'read: not a regular file';
  if (st.size > MAX_FILE_BYTES) return `read: expected at most ${MAX_FILE_BYTES} bytes, received a file of ${st.size} bytes`;
  return null;
}

/**
 * readFileBytes without the thread pool: what a batch of small files costs is mostly the four hops to libuv's
 * threads per file (stat, open, read, close), and in the decode worker nothing else waits on this thread.
 */
function readFileBytesSync(file: string): FileBytes {
  try {
    const refused = refusal(fs.statSync(file));
    return refused ? { error: refused } : { bytes: fs.readFileSync(file) };
  } catch (err) {
    return { error: describeFsError('read', err) };
  }
}

/** Decodes and preprocesses one file's bytes; never throws for a bad file, only reports it. */
async function preprocessBytes(bytes: Uint8Array, file: string): Promise<InputResult> {
  try {
    return { x: await preprocessForModel(bytes, { name: file }) };
  } catch (err) {
    // keep only the decoder's reason: the result names the file
    if (err instanceof ImageDecodeError) return { error: err.reason };
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

/** Reads and preprocesses one file; never throws for a bad file, only reports it. */
export async function readInput(file: string): Promise<InputResult> {
  const r = await readFileBytes(file);
  return r.error !== undefined ? r : preprocessBytes(r.bytes, file);
}

/**
 * A batch of files after decoding: the inputs of the files that decoded, packed one after another in file
 * order ([ok,3,32,32]), and per file null (decoded) or why not.
 */
export interface DecodedBatch {
  readonly x: Float32Array;
  readonly errors: (string | null)[];
}

/**
 * How many files of one batch are read and decoded at once: enough to keep sharp's threads busy, few enough
 * that a batch of 48-megapixel photos does not hold a gigabyte of pixels.
 */
const DECODE_CONCURRENCY = 4;

/**
 * Reads `files` one after another (synchronously: this runs in the decode worker, or in a CLI with nothing else to
 * do) and preprocesses them (at most DECODE_CONCURRENCY at a time); never throws for a bad file. The plain
 * 32x32 JPEGs among them (CIFAR's own files: no resize, no EXIF turn, no colour profile) are decoded together
 * (src/data's decodePlainJpegs: the JPEG addon, else one libvips call), the same pixels at a fraction of sharp's
 * fixed cost per call; the others, and all of a group in which one fails, one by one, so that the bad file is named.
 */
export async function decodeBatch(files: readonly string[]): Promise<DecodedBatch> {
  const read = files.map(readFileBytesSync);
  const grouped = await decodePlainJpegs(read.map((r) => r.bytes));
  const results = await mapLimit(read, DECODE_CONCURRENCY, async (r, i): Promise<InputResult> => {
    if (r.error !== undefined) return r;
    const rgb = grouped[i];
    if (rgb === undefined) return preprocessBytes(r.bytes, files[i]);
    const x = new Float32Array(INPUT_VALUES);
    normalizeInto(x, 0, rgb, 0, IMAGE_SIZE * IMAGE_SIZE);
    return { x };
  });
  const ok = results.filter((r) => r.x !== undefined).length;
  const x = new Float32Array(ok * INPUT_VALUES);
  let at = 0;
  for (const r of results) {
    if (r.x === undefined) continue;
    x.set(r.x, at);
    at += INPUT_VALUES;
  }
  return { x, errors: results.map((r) => (r.error !== undefined ? r.error : null)) };
}
