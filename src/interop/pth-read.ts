/**
 * Reads PyTorch state dicts written by `torch.save(model.state_dict(), path)`, without Python, in both formats:
 *  - zip (the default since PyTorch 1.6): `<name>/data.pkl` is a pickle whose tensors point, by persistent id
 *    ('storage', torch.FloatStorage, key, location, numel), at raw little-endian records `<name>/data/<key>`;
 *  - legacy (`_use_new_zipfile_serialization=False`): consecutive pickles (magic number, protocol version 1001,
 *    sys_info, the object, the sorted list of storage keys), then each storage as an int64 element count and
 *    its raw bytes.
 * Tensors are rebuilt from (storage, offset, size, stride), so views and non-contiguous tensors come out right.
 * A zip whose central directory declares more than its limits (zip-read.ts: tied to the file's size) is refused
 * before anything is inflated, and only the entries the state dict needs are read.
 *
 * What it is not: a loader of whole pickled models or TorchScript archives (only dicts of tensors; any other
 * Python object is refused by name, nothing is ever executed), nor a dtype converter: float32, float64 and int64
 * come out as they are (src/interop/weights.ts converts), any other dtype is an error naming the tensor.
 *
 * References: torch/serialization.py (`_save`, `_legacy_save`, `_load`, `_legacy_load`) and torch/_utils.py
 * (`_rebuild_tensor_v2`) of PyTorch 1.13; the pickle opcodes in ./pickle.ts.
 */
import * as fs from 'node:fs';
import { HostTensor, StateDict, hostNumel } from '../tensor/host';
import { PyDict, unpickle } from './pickle';
import { ZipLimits, checkZipSizes, defaultZipLimits, listZip, readZipEntry } from './zip-read';

/** torch's storage classes: the dtype name and the element size in bytes. */
const STORAGE_TYPES: Record<string, { dtype: string; itemBytes: number }> = {
  FloatStorage: { dtype: 'float32', itemBytes: 4 },
  DoubleStorage: { dtype: 'float64', itemBytes: 8 },
  LongStorage: { dtype: 'int64', itemBytes: 8 },
  HalfStorage: { dtype: 'float16', itemBytes: 2 },
  BFloat16Storage: { dtype: 'bfloat16', itemBytes: 2 },
  IntStorage: { dtype: 'int32', itemBytes: 4 },
  ShortStorage: { dtype: 'int16', itemBytes: 2 },
  CharStorage: { dtype: 'int8', itemBytes: 1 },
  ByteStorage: { dtype: 'uint8', itemBytes: 1 },
  BoolStorage: { dtype: 'bool', itemBytes: 1 },
  ComplexFloatStorage: { dtype: 'complex64', itemBytes: 8 },
  ComplexDoubleStorage: { dtype: 'complex128', itemBytes: 16 },
};
const SUPPORTED = ['float32', 'float64', 'int64'];

/** Bytes that open the legacy format: PROTO 2, LONG1 of 10 bytes (the magic number 0x1950a86a20f9469cfc6c). */
const LEGACY_HEAD = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL_VERSION = 1001;

export interface PthReadResult {
  stateDict: StateDict;
  /** which of torch.save's two formats the file used */
  container: 'zip' | 'legacy';
  /** what was done beyond a plain read (entries skipped, a nested state dict taken) */
  notes: string[];
}

class StorageType {
  constructor(readonly name: string) {}
}

class StorageRef {
  /** the storage's raw bytes, once read (the legacy format stores them after the pickle) */
  bytes: Uint8Array | undefined;
  constructor(
    readonly type: StorageType,
    readonly key: string,
    readonly numel: number,
    /** element offset into the root storage (legacy views) */
    readonly viewOffset = 0,
    /** the storage a legacy view slices; undefined for a root storage */
    readonly root?: StorageRef,
  ) {}
}

class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

export function isZip(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04;
}

export function isLegacyPth(head: Uint8Array): boolean {
  return head.length >= LEGACY_HEAD.length && LEGACY_HEAD.every((b, i) => head[i] === b);
}

function intList(v: unknown, what: string): number[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isSafeInteger(x))) {
    throw new Error(`readPth: expected ${what} as a tuple of integers, received ${String(v)}`);
  }
  return v as number[];
}

function rebuildTensor(storage: unknown, offset: unknown, size: unknown, stride: unknown): TensorRef {
  if (!(storage instanceof StorageRef)) {
    throw new Error(`readPth: expected a tensor storage (persistent id), received ${String(storage)}`);
  }
  if (typeof offset !== 'number') throw new Error(`readPth: expected a storage offset, received ${String(offset)}`);
  return new TensorRef(storage, offset, intList(size, 'a tensor size'), intList(stride, 'a tensor stride'));
}

/** The Python globals a state dict may name; anything else fails with its name when the pickle calls it. */
function findClass(module: string, name: string): unknown {
  if (module === 'collections' && name === 'OrderedDict') return () => new PyDict();
  if (module === 'torch._utils') {
    if (name === '_rebuild_tensor_v2' || name === '_rebuild_tensor') return rebuildTensor;
    if (name === '_rebuild_parameter' || name === '_rebuild_parameter_with_state') return (data: unknown) => data;
  }
  if (module === 'torch' && name.endsWith('Storage')) return new StorageType(name);
  return () => {
    throw new Error(`readPth: the file holds a Python object of ${module}.${name}, expected only a dict of tensors ` +
      '(save model.state_dict(), not the model)');
  };
}

/** Decodes torch's persistent id ('storage', type, key, location, numel[, view_metadata]). */
function storageFromPid(pid: unknown, storages: Map<string, StorageRef>): StorageRef {
  if (!Array.isArray(pid) || pid[0] !== 'storage' || !(pid[1] instanceof StorageType)) {
    throw new Error(`readPth: expected a persistent id ('storage', torch.<Type>Storage, ...), received ${String(pid)}`);
  }
  const [, type, key, , numel, view] = pid as [string, StorageType, unknown, unknown, unknown, unknown];
  if (typeof key !== 'string' || typeof numel !== 'number') {
    throw new Error(`readPth: expected a storage key and element count, received ${String(key)}, ${String(numel)}`);
  }
  let root = storages.get(key);
  if (root === undefined) {
    root = new StorageRef(type, key, numel);
    storages.set(key, root);
  }
  if (view === undefined || view === null) return root;
  if (!Array.isArray(view) || view.length !== 3) {
    throw new Error(`readPth: expected view metadata (key, offset, size), received ${String(view)}`);
  }
  const [viewKey, viewOffset, viewSize] = view as unknown[];
  return new StorageRef(type, String(viewKey), Number(viewSize), Number(viewOffset), root);
}

function storageInfo(s: StorageRef, tensorName: string): { dtype: string; itemBytes: number } {
  const info = STORAGE_TYPES[s.type.name];
  if (info === undefined) {
    throw new Error(`readPth: tensor '${tensorName}' has storage type torch.${s.type.name}, which is not supported ` +
      `(supported: ${SUPPORTED.join(', ')})`);
  }
  return info;
}

type HostArray = Float32Array | Float64Array | BigInt64Array;

/** A typed array of `dtype` over a fresh (so aligned) copy of `bytes`. */
function typedCopy(dtype: string, bytes: Uint8Array): HostArray {
  const buf = Uint8Array.prototype.slice.call(bytes).buffer;
  if (dtype === 'float32') return new Float32Array(buf);
  if (dtype === 'float64') return new Float64Array(buf);
  return new BigInt64Array(buf);
}

function isRowMajor(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d];
  }
  return true;
}

/** Copies the strided view (offset, shape, stride) of `src` into `out`, row-major. */
function gather(src: HostArray, out: HostArray, offset: number, shape: readonly number[], stride: readonly number[]): HostArray {
  const rank = shape.length;
  const idx = new Array<number>(rank).fill(0);
  let at = offset;
  for (let i = 0; i < out.length; i++) {
    out[i] = src[at];
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      at += stride[d];
      if (idx[d] < shape[d]) break;
      at -= stride[d] * shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

function materialize(t: TensorRef, name: string): HostTensor {
  const { dtype, itemBytes } = storageInfo(t.storage, name);
  if (!SUPPORTED.includes(dtype)) {
    throw new Error(`readPth: tensor '${name}' has dtype ${dtype} (torch.${t.storage.type.name}), which is not ` +
      `supported (supported: ${SUPPORTED.join(', ')}); convert it in PyTorch first, e.g. with .float()`);
  }
  const root = t.storage.root ?? t.storage;
  const raw = root.bytes;
  if (raw === undefined) throw new Error(`readPth: tensor '${name}': storage '${root.key}' has no data record`);
  const numel = hostNumel(t.shape);
  const offset = t.offset + t.storage.viewOffset;
  const last = offset + t.shape.reduce((acc, s, d) => acc + (s - 1) * Math.max(0, t.stride[d]), 0);
  if (numel > 0 && (offset < 0 || last * itemBytes + itemBytes > raw.length || t.stride.some((s) => s < 0))) {
    throw new Error(`readPth: tensor '${name}' [${t.shape.join(',')}] at offset ${offset} with strides ` +
      `[${t.stride.join(',')}] needs ${(last + 1) * itemBytes} bytes, its storage has ${raw.length}`);
  }
  const shape = [...t.shape];
  let data: HostArray;
  if (isRowMajor(t.shape, t.stride)) {
    data = typedCopy(dtype, raw.subarray(offset * itemBytes, (offset + numel) * itemBytes));
  } else {
    const out = dtype === 'float32' ? new Float32Array(numel) : dtype === 'float64' ? new Float64Array(numel) : new BigInt64Array(numel);
    data = gather(typedCopy(dtype, raw), out, offset, t.shape, t.stride);
  }
  return { dtype: dtype as HostTensor['dtype'], shape, data };
}

const NESTED_KEYS = ['state_dict', 'model_state_dict', 'model', 'net'];

/** The top-level dict → StateDict; takes a nested state dict from a training checkpoint dict, with a note. */
function toStateDict(value: unknown, notes: string[]): StateDict {
  if (!(value instanceof PyDict)) {
    const what = value === null ? 'None' : Array.isArray(value) ? 'a tuple or list' : typeof value;
    throw new Error(`readPth: expected a dict of tensors (a state_dict), received ${what}`);
  }
  const hasTensor = [...value.values()].some((v) => v instanceof TensorRef);
  if (!hasTensor) {
    const nested = NESTED_KEYS.find((k) => value.get(k) instanceof PyDict);
    if (nested !== undefined) {
      notes.push(`took the state dict under key '${nested}' of the saved dict`);
      return toStateDict(value.get(nested), notes);
    }
  }
  const sd: StateDict = new Map();
  const skipped: string[] = [];
  for (const [k, v] of value) {
    if (typeof k !== 'string') throw new Error(`readPth: expected string keys, received ${String(k)}`);
    if (v instanceof TensorRef) sd.set(k, materialize(v, k));
    else skipped.push(k);
  }
  if (skipped.length > 0) notes.push(`skipped entries that are not tensors: ${skipped.join(', ')}`);
  if (sd.size === 0) throw new Error('readPth: expected a dict of tensors (a state_dict), found no tensors in it');
  return sd;
}

function archivePrefix(names: string[]): string {
  if (names.some((n) => /^[^/]+\/(constants\.pkl$|code\/)/.test(n))) {
    throw new Error('readPth: this is a TorchScript archive (torch.jit.save), expected a state dict saved by torch.save');
  }
  const pkl = names.find((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkl !== undefined) return pkl.slice(0, -'data.pkl'.length);
  throw new Error(`readPth: expected a zip archive with <name>/data.pkl, received entries ${names.slice(0, 5).join(', ')}`);
}

function readZip(bytes: Uint8Array, notes: string[], limits: ZipLimits): StateDict {
  let entries;
  try {
    entries = listZip(bytes);
  } catch (err) {
    throw new Error(`readPth: expected a complete zip archive, received invalid zip data (truncated or corrupt file?): ${(err as Error).message}`, { cause: err });
  }
  try {
    checkZipSizes(entries, bytes.length, limits);
  } catch (err) {
    throw new Error(`readPth: ${(err as Error).message}`, { cause: err });
  }
  const byName = new Map(entries.map((en) => [en.name, en]));
  const read = (name: string): Uint8Array | undefined => {
    const en = byName.get(name);
    try {
      return en === undefined ? undefined : readZipEntry(bytes, en);
    } catch (err) {
      throw new Error(`readPth: ${(err as Error).message}`, { cause: err });
    }
  };
  const prefix = archivePrefix([...byName.keys()]);
  const order = read(`${prefix}byteorder`);
  if (order !== undefined && new TextDecoder().decode(order).trim() !== 'little') {
    throw new Error(`readPth: expected byteorder 'little', received '${new TextDecoder().decode(order)}'`);
  }
  const storages = new Map<string, StorageRef>();
  const { value } = unpickle(read(`${prefix}data.pkl`) as Uint8Array, 0, {
    findClass,
    persistentLoad: (pid) => storageFromPid(pid, storages),
  });
  for (const s of storages.values()) s.bytes = read(`${prefix}data/${s.key}`);
  return toStateDict(value, notes);
}

function readLegacy(bytes: Uint8Array, notes: string[]): StateDict {
  const magic = unpickle(bytes, 0);
  if (magic.value !== LEGACY_MAGIC) throw new Error('readPth: invalid magic number in a legacy .pth; corrupt file?');
  const version = unpickle(bytes, magic.end);
  if (version.value !== LEGACY_PROTOCOL_VERSION) {
    throw new Error(`readPth: expected legacy protocol version ${LEGACY_PROTOCOL_VERSION}, received ${String(version.value)}`);
  }
  const sysInfo = unpickle(bytes, version.end);
  if (sysInfo.value instanceof PyDict && sysInfo.value.get('little_endian') === false) {
    throw new Error('readPth: expected a file saved on a little-endian machine, received a big-endian one');
  }
  const storages = new Map<string, StorageRef>();
  const main = unpickle(bytes, sysInfo.end, { findClass, persistentLoad: (pid) => storageFromPid(pid, storages) });
  const keys = unpickle(bytes, main.end);
  if (!Array.isArray(keys.value)) throw new Error('readPth: expected the list of storage keys after the object');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = keys.end;
  for (const key of keys.value as string[]) {
    const s = storages.get(key);
    if (s === undefined) throw new Error(`readPth: storage '${key}' is listed but no tensor uses it`);
    const info = STORAGE_TYPES[s.type.name];
    if (info === undefined) throw new Error(`readPth: storage '${key}' has unknown type torch.${s.type.name}`);
    if (pos + 8 > bytes.length) throw new Error(`readPth: storage '${key}': expected its size, found the end of the file`);
    const numel = Number(view.getBigInt64(pos, true));
    const end = pos + 8 + numel * info.itemBytes;
    if (end > bytes.length) throw new Error(`readPth: storage '${key}': expected ${numel * info.itemBytes} bytes, file truncated`);
    s.bytes = bytes.subarray(pos + 8, end);
    pos = end;
  }
  notes.push('read the legacy (pre-1.6) torch.save format');
  return toStateDict(main.value, notes);
}

export interface ReadPthOptions {
  /** bounds on a zip's declared sizes (default: defaultZipLimits of the file's size) */
  zipLimits?: ZipLimits;
}

/** Reads a state dict saved by torch.save (zip or legacy format) from its bytes. */
export function readPth(input: Uint8Array, opts: ReadPthOptions = {}): PthReadResult {
  // a plain view: Buffer's slice() shares memory, which the copies below must not
  const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  const notes: string[] = [];
  if (isZip(bytes)) return { stateDict: readZip(bytes, notes, opts.zipLimits ?? defaultZipLimits(bytes.length)), container: 'zip', notes };
  if (isLegacyPth(bytes)) return { stateDict: readLegacy(bytes, notes), container: 'legacy', notes };
  if (bytes.length > 262 && new TextDecoder().decode(bytes.subarray(257, 262)) === 'ustar') {
    throw new Error('readPth: this is the tar-based format of PyTorch < 0.4, which is not supported; re-save it with a newer torch');
  }
  throw new Error('readPth: expected a torch.save file (a zip archive or a legacy pickle starting 80 02 8a 0a), ' +
    `received bytes ${[...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ')}`);
}

export function readPthFile(file: string, opts: ReadPthOptions = {}): PthReadResult {
  try {
    return readPth(fs.readFileSync(file), opts);
  } catch (err) {
    if (err instanceof Error) err.message = `${file}: ${err.message}`;
    throw err;
  }
}
