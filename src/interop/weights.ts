/**
 * `loadWeights(path)`: what every `--weights` option reads (predict, serve, eval, train, export). It takes
 *  - our checkpoints (`.ckpt`, magic "RNTSCKPT") and run folders (their newest valid checkpoint, or RUN/best),
 *  - PyTorch state dicts saved by torch.save, zip or legacy format (`.pth`, `.pt`, any name),
 *  - safetensors files (Hugging Face),
 * recognised by their first bytes, whatever the extension. The state dict then gets the same treatment whatever
 * its source: a `module.` prefix on every key (nn.DataParallel) is removed, float64 tensors become float32; each
 * is said in `notes`. Key names are not otherwise touched: the seed's names are ours.
 * A checkpoint of a run that kept a moving average of its weights (`train --ema`) holds both the raw weights and
 * the average: the average is read by default (it is what the run evaluated and ranked best), with a note
 * "EMA weights (decay D)"; the option `{ ema: false }` reads the raw weights instead.
 *
 * What it is not: the check that the keys and shapes fit the model; `Module.loadStateDict(sd, { strict: true })`
 * lists missing, unexpected and mis-shaped keys by name.
 *
 * References: ./pth-read.ts, ./safetensors.ts, ../run/checkpoint.ts.
 */
import * as fs from 'node:fs';
import { HostTensor, StateDict } from '../tensor/host';
import { readCheckpointFile, resolveWeightsPath } from '../run/checkpoint';
import { CHECKPOINT_MAGIC } from '../run/checkpoint-format';
import { isLegacyPth, isZip, readPthFile } from './pth-read';
import { readSafetensorsFile } from './safetensors';

export type WeightsFormat = 'pth' | 'safetensors' | 'checkpoint';

export interface LoadedWeights {
  stateDict: StateDict;
  format: WeightsFormat;
  /** the file actually read (a run folder resolves to one of its checkpoints) */
  path: string;
  /** what was done on the way: conversions, a stripped prefix, fallbacks */
  notes: string[];
  /**
   * The architecture spec the file records (our checkpoints since they record it), unchecked: src/models'
   * specForWeights checks it against the shapes, or infers one when there is none (.pth, .safetensors).
   */
  spec?: Record<string, unknown>;
}

export interface LoadWeightsOptions {
  /** a checkpoint holding a moving average of the weights: read the average (true, the default) or the raw weights */
  ema?: boolean;
}

const DATA_PARALLEL_PREFIX = 'module.';

function readHead(file: string, n: number): Uint8Array {
  const fd = fs.openSync(file, 'r');
  try {
    const head = new Uint8Array(n);
    const got = fs.readSync(fd, head, 0, n, 0);
    return head.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * safetensors: an 8-byte little-endian header length, then a JSON object ('{'). A length that runs past the end of
 * the file still makes it a safetensors file, a damaged one: its reader then says so, with the sizes.
 */
function looksLikeSafetensors(head: Uint8Array): boolean {
  if (head.length < 9 || head[8] !== 0x7b) return false;
  return new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true) >= 2n;
}

/** Which reader a file needs, from its first bytes. */
export function sniffWeightsFormat(file: string): WeightsFormat {
  const head = readHead(file, 16);
  if (new TextDecoder('latin1').decode(head.subarray(0, CHECKPOINT_MAGIC.length)) === CHECKPOINT_MAGIC) return 'checkpoint';
  if (isZip(head) || isLegacyPth(head)) return 'pth';
  if (looksLikeSafetensors(head)) return 'safetensors';
  const hex = [...head.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  throw new Error(`--weights ${file}: expected a checkpoint (.ckpt), a PyTorch state dict (.pth, zip or legacy) ` +
    `or a safetensors file, received a file starting ${hex || '(empty)'}`);
}

/** Removes `module.` from every key when all keys have it (a model wrapped in nn.DataParallel). */
function stripDataParallel(sd: StateDict, notes: string[]): StateDict {
  const keys = [...sd.keys()];
  if (keys.length === 0 || !keys.every((k) => k.startsWith(DATA_PARALLEL_PREFIX))) return sd;
  notes.push(`removed the '${DATA_PARALLEL_PREFIX}' prefix (nn.DataParallel) from ${keys.length} keys`);
  return new Map([...sd].map(([k, v]) => [k.slice(DATA_PARALLEL_PREFIX.length), v]));
}

/** float64 → float32 (the engine computes in float32), noting which tensors changed. */
function toFloat32(sd: StateDict, notes: string[]): StateDict {
  const converted: string[] = [];
  const out: StateDict = new Map();
  for (const [k, t] of sd) {
    if (t.dtype === 'float64') {
      converted.push(k);
      const f32: HostTensor = { dtype: 'float32', shape: [...t.shape], data: Float32Array.from(t.data as Float64Array) };
      out.set(k, f32);
    } else out.set(k, t);
  }
  if (converted.length > 0) {
    const shown = converted.length > 5 ? `${converted.slice(0, 5).join(', ')}, ...` : converted.join(', ');
    notes.push(`converted ${converted.length} float64 tensor(s) to float32: ${shown}`);
  }
  return out;
}

async function readAny(
  file: string, format: WeightsFormat, notes: string[], opts: LoadWeightsOptions,
): Promise<{ sd: StateDict; spec?: Record<string, unknown> }> {
  if (format === 'checkpoint') {
    const c = await readCheckpointFile(file);
    if (!c.ema) return { sd: c.model, spec: c.spec };
    const what = `decay ${c.ema.decay}, ${c.ema.updates} updates`;
    if (opts.ema === false) {
      notes.push(`raw weights (the checkpoint also holds EMA weights, ${what}, not used)`);
      return { sd: c.model, spec: c.spec };
    }
    notes.push(`EMA weights (${what}): the checkpoint's moving average of the weights, used by default`);
    return { sd: c.ema.state, spec: c.spec };
  }
  try {
    if (format === 'safetensors') return { sd: readSafetensorsFile(file).tensors };
    const r = readPthFile(file);
    notes.push(...r.notes);
    return { sd: r.stateDict };
  } catch (err) {
    // The readers name themselves for their own callers; a user asked for weights and gets the file and the reason.
    throw new Error((err as Error).message.replace(/\b(readPth|readSafetensors): /g, ''), { cause: err });
  }
}

/** Reads the weights `--weights` names: a .ckpt, a run folder, a .pth or a .safetensors file. */
export async function loadWeights(weightsPath: string, opts: LoadWeightsOptions = {}): Promise<LoadedWeights> {
  const notes: string[] = [];
  const file = resolveWeightsPath(weightsPath, (m) => notes.push(m));
  if (file !== weightsPath) notes.push(`${weightsPath} resolved to ${file}`);
  const format = sniffWeightsFormat(file);
  const raw = await readAny(file, format, notes, opts);
  const stateDict = toFloat32(stripDataParallel(raw.sd, notes), notes);
  return { stateDict, format, path: file, notes, ...(raw.spec !== undefined ? { spec: raw.spec } : {}) };
}
