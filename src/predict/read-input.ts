/**
 * From a file name to the model's input: read the file (regular files only, with a size cap), decode and
 * preprocess it (src/data's preprocessForModel: RGB, resize to 32x32, the seed's normalisation), and say why
 * when that fails. Used by `resnet predict` on the main thread (one file, the interactive loop) and by the
 * decode worker (decode-worker.ts) for a whole batch of files.
 *
 * What it is not: the model. Nothing here throws for a bad file; the reason comes back as a string that
 * does not repeat the file name (the result that carries it already names the file).
 */
import { promises as fsp } from 'node:fs';
import { ImageDecodeError, preprocessForModel } from '../data';

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

/** Reads and preprocesses one file; never throws for a bad file, only reports it. */
export async function readInput(file: string): Promise<InputResult> {
  let bytes: Uint8Array;
  try {
    const st = await fsp.stat(file);
    if (!st.isFile()) return { error: 'read: not a regular file' };
    if (st.size > MAX_FILE_BYTES) {
      return { error: `read: expected at most ${MAX_FILE_BYTES} bytes, received a file of ${st.size} bytes` };
    }
    bytes = await fsp.readFile(file);
  } catch (err) {
    return { error: describeFsError('read', err) };
  }
  try {
    return { x: await preprocessForModel(bytes, { name: file }) };
  } catch (err) {
    // keep only the decoder's reason: the result names the file
    if (err instanceof ImageDecodeError) return { error: err.reason };
    return { error: err instanceof Error ? err.message : String(err) };
  }
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

/** Reads and preprocesses `files` (at most DECODE_CONCURRENCY at a time); never throws for a bad file. */
export async function decodeBatch(files: readonly string[]): Promise<DecodedBatch> {
  const results = new Array<InputResult>(files.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < files.length) {
      const i = next++;
      results[i] = await readInput(files[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(DECODE_CONCURRENCY, files.length) }, lane));
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
