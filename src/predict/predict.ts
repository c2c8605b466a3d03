/**
 * `resnet predict` as a programmatic API: expand the paths a user gives (files as given, folders walked in
 * sorted order), classify each file on its own, and render the results as text or JSON.
 *
 * What it is not: the command-line parsing (src/cli/commands/predict.ts) or the model (classifier.ts).
 * A file that cannot be read or decoded yields an error entry and the others are still classified; the
 * caller turns "any error" into exit code 1.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { IMAGE_EXTENSIONS, ImageDecodeError } from '../data';
import type { Classifier } from './classifier';
import { Prediction, PredictionJson, predictionToJson, topK } from './prediction';

/** Largest file the CLI reads into memory; far above any real photo, it only stops accidents. */
export const MAX_FILE_BYTES = 256 * 1024 * 1024;

export type FileResult =
  | { readonly file: string; readonly prediction: Prediction; readonly error?: undefined }
  | { readonly file: string; readonly error: string; readonly prediction?: undefined };

/** An input path after expansion: a file to classify, or a path that already failed (missing, unreadable). */
export interface InputEntry {
  readonly file: string;
  readonly error?: string;
}

function describeFsError(op: string, err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e && e.code === 'ENOENT') return `${op}: no such file or directory`;
  if (e && (e.code === 'EACCES' || e.code === 'EPERM')) return `${op}: permission denied`;
  return `${op}: ${e && e.message ? e.message : String(err)}`;
}

/** Code-unit order: the same on every machine and locale, as Python's sorted() over folder names. */
function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function walkFolder(dir: string, out: InputEntry[], seen: Set<string>): Promise<void> {
  const real = await fsp.realpath(dir);
  if (seen.has(real)) return; // a symlink loop
  seen.add(real);
  let names: string[];
  try {
    names = (await fsp.readdir(dir)).sort(byName);
  } catch (err) {
    out.push({ file: dir, error: describeFsError('read folder', err) });
    return;
  }
  for (const name of names) {
    if (name.startsWith('.')) continue;
    const p = path.join(dir, name);
    let st;
    try {
      st = await fsp.stat(p);
    } catch (err) {
      out.push({ file: p, error: describeFsError('stat', err) });
      continue;
    }
    if (st.isDirectory()) await walkFolder(p, out, seen);
    // in a folder, only the extensions src/data decodes; a file named explicitly is always tried (magic bytes decide)
    else if (st.isFile() && IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase())) out.push({ file: p });
  }
}

/** Expands the paths in the order given; folders contribute their image files, recursively, in sorted order. */
export async function expandInputs(paths: readonly string[]): Promise<InputEntry[]> {
  const out: InputEntry[] = [];
  for (const p of paths) {
    let st;
    try {
      st = await fsp.stat(p);
    } catch (err) {
      out.push({ file: p, error: describeFsError('open', err) });
      continue;
    }
    if (st.isDirectory()) await walkFolder(p, out, new Set());
    else out.push({ file: p });
  }
  return out;
}

/** Reads and classifies one file; never throws for a bad file, only reports it. */
export async function predictFile(classifier: Classifier, file: string): Promise<FileResult> {
  let bytes: Uint8Array;
  try {
    const st = await fsp.stat(file);
    if (!st.isFile()) return { file, error: 'read: not a regular file' };
    if (st.size > MAX_FILE_BYTES) {
      return { file, error: `read: expected at most ${MAX_FILE_BYTES} bytes, received a file of ${st.size} bytes` };
    }
    bytes = await fsp.readFile(file);
  } catch (err) {
    return { file, error: describeFsError('read', err) };
  }
  try {
    return { file, prediction: await classifier.classifyBytes(bytes, { name: file }) };
  } catch (err) {
    // the result already names the file: keep only the decoder's reason
    if (err instanceof ImageDecodeError) return { file, error: err.reason };
    return { file, error: err instanceof Error ? err.message : String(err) };
  }
}

/** Classifies every input in order; `onResult` sees each result as soon as it is ready (for streaming output). */
export async function predictPaths(
  classifier: Classifier,
  paths: readonly string[],
  onResult?: (r: FileResult) => void,
): Promise<FileResult[]> {
  const results: FileResult[] = [];
  for (const entry of await expandInputs(paths)) {
    const r: FileResult = entry.error !== undefined ? { file: entry.file, error: entry.error } : await predictFile(classifier, entry.file);
    results.push(r);
    onResult?.(r);
  }
  return results;
}

export type PredictJson = ({ file: string } & PredictionJson) | { file: string; error: string };

export function resultToJson(r: FileResult): PredictJson {
  if (r.error !== undefined) return { file: r.file, error: r.error };
  return { file: r.file, ...predictionToJson(r.prediction) };
}

export type Lang = 'zh' | 'en';

export function formatPercent(p: number): string {
  return `${(p * 100).toFixed(2)}%`;
}

/**
 * One line per file: `FILE  猫  87.31%` and, for k > 1, the top-k after a bar.
 * Errors read `FILE  error: ...` so that a pipe through grep still sees the file name.
 */
export function formatResultText(r: FileResult, opts: { lang: Lang; topk: number }): string {
  if (r.error !== undefined) return `${r.file}  error: ${r.error}`;
  const p = r.prediction;
  const name = (c: { label: string; labelZh: string }): string => (opts.lang === 'en' ? c.label : c.labelZh);
  let line = `${r.file}  ${name(p)}  ${formatPercent(p.confidence)}`;
  if (opts.topk > 1) {
    const ranked = topK(p, opts.topk).map((c) => `${name(c)} ${formatPercent(c.prob)}`);
    line += `  | top-${ranked.length}: ${ranked.join(', ')}`;
  }
  return line;
}
