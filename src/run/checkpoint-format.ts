/**
 * The resnet-ts checkpoint file format: one self-checking binary file holding a training state.
 *
 * Layout (all integers little-endian):
 *   0   8 bytes  magic "RNTSCKPT"
 *   8   uint32   format version (1)
 *   12  uint32   header size (32)
 *   16  uint64   total file size in bytes (catches truncation before anything else is read)
 *   24  uint64   metadata length M
 *   32  M bytes  metadata: UTF-8 JSON (epoch, step, config, optimizer name/hyper/state, rng, ... and a table
 *                of tensors per named StateDict: name, dtype, shape, offset, bytes; the StateDicts are `model`,
 *                `optimizer.buffers` and, in a run that keeps a moving average of its weights, `ema`)
 *   ..  zero padding to a multiple of 8
 *   ..  tensor data, each tensor at an 8-byte-aligned offset from the data start, raw LE element bytes
 *   end-32       SHA-256 of every byte before it
 * Non-finite numbers and bigints in the metadata are stored as {"__float__":"NaN"} / {"__bigint__":"12"}, so
 * that a NaN metric comes back as NaN and not as JSON's null.
 *
 * What it is not: a PyTorch/safetensors file (see src/interop for those), or a streaming format (a checkpoint
 * is encoded in memory: ResNet-18 with momentum buffers is ~90 MB).
 * Every file carries a checksum, verified on load. A reader that predates a StateDict skips its table (an older
 * build reads a checkpoint with an `ema` table as one without). References: FIPS 180-4 (SHA-256, via node:crypto).
 */
import { createHash } from 'node:crypto';
import * as os from 'node:os';
import type { HostDType, HostTensor, StateDict } from '../tensor/host';
import { hostNumel } from '../tensor/host';

export interface Checkpoint {
  model: StateDict;
  optimizer: { name: string; hyper: Record<string, number | boolean>; buffers: StateDict; state?: Record<string, unknown> };
  epoch: number;
  step: number;
  rng?: unknown;
  config: Record<string, unknown>;
  datasetFingerprint?: string;
  metrics?: Record<string, number>;
  env?: Record<string, string>;
  /** the training loop's own state (position inside an epoch, running sums, best accuracy, history) */
  trainer?: Record<string, unknown>;
  /**
   * The model's architecture spec, { arch, width, numClasses, inputSize } (src/models/spec.ts checks it when the
   * weights are read); checkpoints written before it was recorded lack it and get it inferred from their shapes.
   */
  spec?: Record<string, unknown>;
  /**
   * The exponential moving average of the weights (train/ema.ts), when the run keeps one: its decay, the updates
   * done, and the averaged state dict (the model's keys and shapes, float32 as `model`).
   */
  ema?: CheckpointEma;
  /** Lookahead's slow weights (train/lookahead.ts), when the run uses it: k, the synchronisations done, the state dict. */
  lookahead?: CheckpointLookahead;
}

export interface CheckpointLookahead { k: number; syncs: number; state: StateDict }

export interface CheckpointEma { decay: number; updates: number; state: StateDict }

/** A checkpoint that cannot be used: `file` names it, `reason` says what is wrong with it. */
export class CheckpointCorruptError extends Error {
  constructor(readonly file: string, readonly reason: string) {
    super(`checkpoint ${file}: ${reason}`);
    this.name = 'CheckpointCorruptError';
  }
}

/** The first 8 bytes of every checkpoint file (for format sniffing elsewhere). */
export const CHECKPOINT_MAGIC = 'RNTSCKPT';
const MAGIC = Buffer.from(CHECKPOINT_MAGIC, 'latin1');
const VERSION = 1;
const HEADER = 32;
const HASH = 32;
const ELEM: Record<HostDType, number> = { float32: 4, float64: 8, int64: 8 };

interface TensorEntry {
  name: string;
  dtype: HostDType;
  shape: number[];
  offset: number;
  bytes: number;
}

const align8 = (n: number): number => Math.ceil(n / 8) * 8;

function requireLittleEndian(op: string): void {
  if (os.endianness() !== 'LE') throw new Error(`${op}: checkpoint files are little-endian; this host is big-endian`);
}

function jsonReplacer(this: unknown, key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value)) return { __float__: String(value) };
  if (typeof value === 'bigint') return { __bigint__: value.toString() };
  if (ArrayBuffer.isView(value) || value instanceof Map || value instanceof Set) {
    throw new Error(`encodeCheckpoint: metadata key "${key}" holds a ${value.constructor.name}; put tensors in a StateDict`);
  }
  return value;
}

function jsonReviver(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    const v = value as Record<string, string>;
    if (keys.length === 1 && keys[0] === '__float__') return Number(v.__float__);
    if (keys.length === 1 && keys[0] === '__bigint__') return BigInt(v.__bigint__);
  }
  return value;
}

function checkTensor(op: string, dict: string, name: string, t: HostTensor): void {
  const ctor = { float32: Float32Array, float64: Float64Array, int64: BigInt64Array }[t.dtype];
  if (ctor === undefined) {
    throw new Error(`${op}: ${dict}.${name}: expected dtype float32/float64/int64, received ${t.dtype}`);
  }
  if (!(t.data instanceof ctor)) {
    const got = t.data.constructor.name;
    throw new Error(`${op}: ${dict}.${name}: dtype ${t.dtype} expects ${ctor.name} data, received ${got}`);
  }
  if (!t.shape.every((d) => Number.isInteger(d) && d >= 0) || hostNumel(t.shape) !== t.data.length) {
    throw new Error(`${op}: ${dict}.${name}: shape [${t.shape.join(',')}] does not match ${t.data.length} elements`);
  }
}

function tensorTable(dicts: [string, StateDict][]): { table: Record<string, TensorEntry[]>; dataBytes: number } {
  const table: Record<string, TensorEntry[]> = {};
  let offset = 0;
  for (const [dictName, sd] of dicts) {
    if (!(sd instanceof Map)) {
      throw new Error(`encodeCheckpoint: expected ${dictName} to be a StateDict (Map), received ${typeof sd}`);
    }
    table[dictName] = [];
    for (const [name, t] of sd) {
      checkTensor('encodeCheckpoint', dictName, name, t);
      const bytes = t.data.byteLength;
      table[dictName].push({ name, dtype: t.dtype, shape: [...t.shape], offset, bytes });
      offset = align8(offset + bytes);
    }
  }
  return { table, dataBytes: offset };
}

function checkCounters(c: Checkpoint): void {
  for (const k of ['epoch', 'step'] as const) {
    if (!Number.isSafeInteger(c[k]) || c[k] < 0) {
      throw new Error(`encodeCheckpoint: expected ${k} a non-negative integer, received ${c[k]}`);
    }
  }
}

/** The named StateDicts of a checkpoint, in file order. */
export function stateDictsOf(c: Checkpoint): [string, StateDict][] {
  const dicts: [string, StateDict][] = [['model', c.model], ['optimizer.buffers', c.optimizer.buffers]];
  if (c.ema) dicts.push(['ema', c.ema.state]);
  if (c.lookahead) dicts.push(['lookahead', c.lookahead.state]);
  return dicts;
}

/** Serializes a checkpoint to the bytes of a complete file. */
export function encodeCheckpoint(c: Checkpoint): Uint8Array {
  requireLittleEndian('encodeCheckpoint');
  checkCounters(c);
  const dicts = stateDictsOf(c);
  const { table, dataBytes } = tensorTable(dicts);
  const { model: _m, optimizer, ema, lookahead, ...rest } = c;
  const opt = { name: optimizer.name, hyper: optimizer.hyper, state: optimizer.state };
  const meta = { ...rest, optimizer: opt, ...(ema ? { ema: { decay: ema.decay, updates: ema.updates } } : {}),
    ...(lookahead ? { lookahead: { k: lookahead.k, syncs: lookahead.syncs } } : {}), tensors: table, dataBytes };
  const json = Buffer.from(JSON.stringify(meta, jsonReplacer), 'utf8');
  const dataStart = align8(HEADER + json.length);
  const total = dataStart + dataBytes + HASH;
  const out = Buffer.alloc(total);
  MAGIC.copy(out, 0);
  out.writeUInt32LE(VERSION, 8);
  out.writeUInt32LE(HEADER, 12);
  out.writeBigUInt64LE(BigInt(total), 16);
  out.writeBigUInt64LE(BigInt(json.length), 24);
  json.copy(out, HEADER);
  for (const [dictName, sd] of dicts) {
    for (const e of table[dictName]) {
      const t = sd.get(e.name) as HostTensor;
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, e.bytes), dataStart + e.offset);
    }
  }
  createHash('sha256').update(out.subarray(0, total - HASH)).digest().copy(out, total - HASH);
  return out;
}

/** Checks everything that can be checked without the metadata: size, magic, version, length, checksum. */
function verifyEnvelope(b: Buffer, name: string): void {
  const bad = (reason: string): never => {
    throw new CheckpointCorruptError(name, reason);
  };
  if (b.length === 0) bad('empty file (0 bytes)');
  if (b.length < HEADER + HASH) bad(`truncated: ${b.length} bytes, smaller than the ${HEADER + HASH}-byte minimum`);
  const magic = b.subarray(0, 8);
  if (!magic.equals(MAGIC)) bad(`not a resnet-ts checkpoint (magic ${magic.toString('hex')}, expected "${CHECKPOINT_MAGIC}")`);
  const version = b.readUInt32LE(8);
  if (version !== VERSION) bad(`format version ${version} is not supported (this build reads version ${VERSION})`);
  const total = b.readBigUInt64LE(16);
  if (total !== BigInt(b.length)) {
    bad(`size mismatch: the header says ${total} bytes, the file has ${b.length} (truncated or damaged)`);
  }
  const digest = createHash('sha256').update(b.subarray(0, b.length - HASH)).digest();
  if (!digest.equals(b.subarray(b.length - HASH))) bad('SHA-256 mismatch: the contents are damaged');
}

function readTensor(b: Buffer, dataStart: number, dataBytes: number, e: TensorEntry, where: string): HostTensor {
  const ctor = { float32: Float32Array, float64: Float64Array, int64: BigInt64Array }[e.dtype];
  const okShape = Array.isArray(e.shape) && e.shape.every((d) => Number.isInteger(d) && d >= 0);
  if (ctor === undefined || !okShape || hostNumel(e.shape) * ELEM[e.dtype] !== e.bytes) {
    throw new Error(`tensor ${where}: bad entry ${JSON.stringify({ ...e, name: undefined })}`);
  }
  if (!(Number.isInteger(e.offset) && e.offset >= 0 && e.offset % 8 === 0 && e.offset + e.bytes <= dataBytes)) {
    throw new Error(`tensor ${where}: bytes [${e.offset}, ${e.offset + e.bytes}) outside the ${dataBytes}-byte data block`);
  }
  // Copy out of the file buffer: the tensor owns its memory and the file buffer can be freed.
  const copy = new Uint8Array(e.bytes);
  copy.set(b.subarray(dataStart + e.offset, dataStart + e.offset + e.bytes));
  const data =
    e.dtype === 'float32'
      ? new Float32Array(copy.buffer)
      : e.dtype === 'float64'
        ? new Float64Array(copy.buffer)
        : new BigInt64Array(copy.buffer);
  return { dtype: e.dtype, shape: [...e.shape], data };
}

function readDicts(b: Buffer, meta: Record<string, unknown>, dataStart: number): Map<string, StateDict> {
  const dataBytes = meta.dataBytes as number;
  if (!Number.isInteger(dataBytes) || dataStart + dataBytes + HASH !== b.length) {
    throw new Error(`the data block (${dataBytes} bytes from ${dataStart}) does not fill the file`);
  }
  const out = new Map<string, StateDict>();
  for (const [dictName, entries] of Object.entries(meta.tensors as Record<string, TensorEntry[]>)) {
    const sd: StateDict = new Map();
    for (const e of entries) sd.set(e.name, readTensor(b, dataStart, dataBytes, e, `${dictName}.${e.name}`));
    out.set(dictName, sd);
  }
  return out;
}

/** Parses checkpoint bytes; `name` (usually the path) appears in every error. Verifies before it trusts. */
export function decodeCheckpoint(bytes: Uint8Array, name: string): Checkpoint {
  requireLittleEndian('decodeCheckpoint');
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  verifyEnvelope(b, name);
  try {
    const jsonLen = Number(b.readBigUInt64LE(24));
    if (HEADER + jsonLen + HASH > b.length) throw new Error(`metadata length ${jsonLen} exceeds the file`);
    const meta = JSON.parse(b.toString('utf8', HEADER, HEADER + jsonLen), jsonReviver) as Record<string, unknown>;
    const dicts = readDicts(b, meta, align8(HEADER + jsonLen));
    const opt = meta.optimizer as Checkpoint['optimizer'];
    const c: Checkpoint = {
      model: dicts.get('model') ?? new Map(),
      optimizer: { name: opt.name, hyper: opt.hyper, buffers: dicts.get('optimizer.buffers') ?? new Map() },
      epoch: meta.epoch as number,
      step: meta.step as number,
      config: meta.config as Record<string, unknown>,
    };
    if (opt.state !== undefined) c.optimizer.state = opt.state;
    const ema = meta.ema as { decay: number; updates: number } | undefined;
    const emaState = dicts.get('ema');
    if ((ema === undefined) !== (emaState === undefined)) throw new Error('the ema metadata and its tensor table come together; one is missing');
    if (ema && emaState) c.ema = { decay: ema.decay, updates: ema.updates, state: emaState };
    const la = meta.lookahead as { k: number; syncs: number } | undefined;
    const laState = dicts.get('lookahead');
    if ((la === undefined) !== (laState === undefined)) throw new Error('the lookahead metadata and its tensor table come together; one is missing');
    if (la && laState) c.lookahead = { k: la.k, syncs: la.syncs, state: laState };
    for (const k of ['rng', 'datasetFingerprint', 'metrics', 'env', 'trainer', 'spec'] as const) {
      if (meta[k] !== undefined) (c as unknown as Record<string, unknown>)[k] = meta[k];
    }
    return c;
  } catch (err) {
    // The checksum matched, so these are files written by a buggy or foreign writer, not disk damage.
    throw new CheckpointCorruptError(name, `invalid metadata: ${(err as Error).message}`);
  }
}

/** True when every float tensor of `sd` holds only finite values (int64 tensors are always finite). */
export function isFiniteStateDict(sd: StateDict): boolean {
  return firstNonFinite(sd) === null;
}

/** The name of the first tensor holding a NaN or ±Inf, or null. */
export function firstNonFinite(sd: StateDict): string | null {
  for (const [name, t] of sd) {
    if (t.dtype === 'int64') continue;
    const d = t.data as Float32Array | Float64Array;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) return name;
  }
  return null;
}
