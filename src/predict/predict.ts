/**
 * `resnet predict` as a programmatic API: expand the paths a user gives (files as given, folders walked in
 * sorted order), classify them, and render the results as text or JSON.
 *
 * Many files go through a pipeline: batches of `batchSize` files are read and decoded in worker threads
 * (decode-pool.ts) while the model runs on the batch before them, one forward pass per batch
 * (Classifier.classifyBatch); results come out in the order given. One file (predictFile, the interactive
 * loop) is read, decoded and classified alone, as the server does.
 *
 * What it is not: the command-line parsing (src/cli/commands/predict.ts) or the model (classifier.ts).
 * A file that cannot be read or decoded yields an error entry and the others are still classified; the
 * caller turns "any error" into exit code 1.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { IMAGE_EXTENSIONS } from '../data';
import type { Classifier } from './classifier';
import { startDecoder } from './decode-pool';
import { Prediction, PredictionJson, predictionToJson, topK } from './prediction';
import { DecodedBatch, INPUT_VALUES, describeFsError, readInput } from './read-input';

export { MAX_FILE_BYTES } from './read-input';

/** Files per forward pass in folder prediction (`--batch-size`): bench's batch, faster than 64 over the CIFAR test set (255 against 237 img/s). */
export const DEFAULT_BATCH_SIZE = 128;

/** Below this many files decoding stays on the main thread: starting a worker costs more than it saves. */
export const WORKER_MIN_FILES = 32;

export type FileResult =
  | { readonly file: string; readonly prediction: Prediction; readonly error?: undefined }
  | { readonly file: string; readonly error: string; readonly prediction?: undefined };

/** An input path after expansion: a file to classify, or a path that already failed (missing, unreadable). */
export interface InputEntry {
  readonly file: string;
  readonly error?: string;
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

/** Reads and classifies one file alone (batch 1); never throws for a bad file, only reports it. */
export async function predictFile(classifier: Classifier, file: string): Promise<FileResult> {
  const input = await readInput(file);
  if (input.error !== undefined) return { file, error: input.error };
  try {
    return { file, prediction: classifier.classifyInput(input.x) };
  } catch (err) {
    return { file, error: err instanceof Error ? err.message : String(err) };
  }
}

export interface PredictPathsOptions {
  /** files per forward pass (default DEFAULT_BATCH_SIZE) */
  readonly batchSize?: number;
  /** decode worker threads, 0 = the main thread (default: defaultDecodeWorkers(), or 0 for short lists) */
  readonly workers?: number;
  /** told how many results are coming, once the paths are expanded (for a progress bar) */
  readonly onPlan?: (files: number) => void;
}

/**
 * oneDNN already runs the forward pass on every core; one decode worker per two cores keeps decoding ahead of
 * it (decoding a CIFAR image costs about a tenth of its forward pass) without taking the cores it computes on.
 */
export function defaultDecodeWorkers(): number {
  return Math.max(1, Math.min(4, Math.floor(os.availableParallelism() / 2)));
}

function checkCount(option: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new Error(`predict: expected ${option} to be an integer of at least ${min}, received ${v}`);
}

/**
 * The batch's results in file order; a forward pass that fails (NaN logits) is retried per input, to blame only its
 * file. `padTo`: a smaller batch runs as one of this many inputs, zeros after its own, whose results are dropped: the
 * last, partial batch of a folder then reuses the full batches' primitives and algorithm choices instead of
 * building and timing new ones for a shape used once (at batch 16 that cost more than the 112 extra inputs). Each
 * input's logits do not depend on the others in the batch (batch norm is folded), so the answers are the same.
 */
function classifyDecoded(classifier: Classifier, files: readonly string[], d: DecodedBatch, padTo = 0): FileResult[] {
  const ok = d.errors.filter((e) => e === null).length;
  let preds: (Prediction | string)[];
  try {
    if (ok > 0 && ok < padTo) {
      const x = new Float32Array(padTo * INPUT_VALUES);
      x.set(d.x.subarray(0, ok * INPUT_VALUES));
      preds = classifier.classifyBatch(x, padTo).slice(0, ok);
    } else {
      preds = classifier.classifyBatch(d.x, ok);
    }
  } catch {
    preds = Array.from({ length: ok }, (_, i) => {
      try {
        return classifier.classifyInput(d.x.subarray(i * INPUT_VALUES, (i + 1) * INPUT_VALUES));
      } catch (err) {
        return err instanceof Error ? err.message : String(err);
      }
    });
  }
  let k = 0;
  return files.map((file, i): FileResult => {
    const error = d.errors[i];
    if (error !== null) return { file, error };
    const p = preds[k++];
    return typeof p === 'string' ? { file, error: p } : { file, prediction: p };
  });
}

/** A batch's entries: the files to decode, and the results of those that already failed (missing, unreadable). */
function mergeBatch(entries: readonly InputEntry[], decoded: FileResult[]): FileResult[] {
  let k = 0;
  return entries.map((e) => (e.error !== undefined ? { file: e.file, error: e.error } : decoded[k++]));
}

/**
 * Classifies every input, results in the order given; `onResult` sees each as soon as its batch is done
 * (for streaming output). Decoding runs up to two batches per worker ahead of the forward pass.
 */
export async function predictPaths(
  classifier: Classifier,
  paths: readonly string[],
  onResult?: (r: FileResult) => void,
  opts: PredictPathsOptions = {},
): Promise<FileResult[]> {
  const batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
  checkCount('--batch-size', batchSize, 1);
  const entries = await expandInputs(paths);
  opts.onPlan?.(entries.length);
  const batches: InputEntry[][] = [];
  for (let i = 0; i < entries.length; i += batchSize) batches.push(entries.slice(i, i + batchSize));
  const toDecode = (b: InputEntry[]): string[] => b.filter((e) => e.error === undefined).map((e) => e.file);
  const workers = opts.workers ?? (entries.length >= WORKER_MIN_FILES ? defaultDecodeWorkers() : 0);
  checkCount('workers', workers, 0);
  const decoder = startDecoder(workers);
  const ahead = Math.max(2, 2 * workers);
  const inFlight: Promise<DecodedBatch>[] = [];
  const results: FileResult[] = [];
  try {
    for (let i = 0; i < batches.length; i++) {
      while (inFlight.length < Math.min(ahead, batches.length - i)) inFlight.push(decoder.decode(toDecode(batches[i + inFlight.length])));
      const decoded = await inFlight.shift()!;
      // the last batch of several runs at the full batch size (classifyDecoded's padTo)
      const padTo = i > 0 && i === batches.length - 1 ? batchSize : 0;
      for (const r of mergeBatch(batches[i], classifyDecoded(classifier, toDecode(batches[i]), decoded, padTo))) {
        results.push(r);
        onResult?.(r);
      }
    }
  } finally {
    await decoder.close();
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
