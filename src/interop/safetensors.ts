/**
 * Reading and writing the safetensors format (Hugging Face): the interchange format for state dicts between
 * this project, PyTorch and anything else that speaks it.
 *
 * Layout of a file:
 *   bytes 0..8      N, the header length, unsigned 64-bit little-endian
 *   bytes 8..8+N    a UTF-8 JSON object { name: { dtype, shape, data_offsets: [begin, end] }, ...,
 *                   "__metadata__"?: { string: string } }, possibly padded at the end with spaces
 *   bytes 8+N..     the data buffer: each tensor's elements, row-major, little-endian, at [begin, end)
 *                   relative to the start of the buffer
 *
 * What it is not: a lazy/memory-mapped reader (files are read whole; our largest is ~45 MB), nor a general
 * dtype library: F32, F64 and I64 map onto HostTensor's dtypes, F16 (half precision) is read into float32 and
 * written from float32 on request (`{ half: true }`, ./float16.ts rounds to nearest even); any other dtype is
 * rejected by name.
 *
 * Reference: the format description in the huggingface/safetensors repository (README, "Format"); its rules
 * that the header is at most 100 MB and that the data buffer is indexed entirely, without holes or overlaps,
 * are enforced here too.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HostDType, HostTensor, StateDict, hostNumel } from '../tensor/host';
import { fromFloat16Array, toFloat16Array } from './float16';

/** The format's own cap on the header size, so that a corrupt length cannot make us allocate gigabytes. */
const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';

/** A file dtype: the host dtype it is read into and its size in the file (F16 is widened to float32 on reading). */
type FileDType = 'F32' | 'F64' | 'I64' | 'F16';
const FILE_DTYPES: Record<FileDType, { host: HostDType; bytes: number }> = {
  F32: { host: 'float32', bytes: 4 }, F64: { host: 'float64', bytes: 8 }, I64: { host: 'int64', bytes: 8 }, F16: { host: 'float32', bytes: 2 },
};
const HOST_TO_DTYPE: Record<HostDType, FileDType> = { float32: 'F32', float64: 'F64', int64: 'I64' };

export interface WriteSafetensorsOptions {
  /** store float32 and float64 tensors as F16 (half the size of F32; int64 tensors stay I64) */
  readonly half?: boolean;
}

// The data buffer is little-endian and we copy it into typed arrays, which use the host's byte order.
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

function assertLittleEndianHost(op: string): void {
  if (!HOST_IS_LITTLE_ENDIAN) throw new Error(`${op}: expected a little-endian host, received a big-endian one`);
}

interface HeaderEntry {
  name: string;
  dtype: FileDType;
  shape: number[];
  begin: number;
  end: number;
}

function isNonNegativeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Checks one `name: {dtype, shape, data_offsets}` header entry and returns it typed. */
function parseEntry(name: string, raw: unknown): HeaderEntry {
  const op = `readSafetensors: tensor '${name}'`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new Error(`${op}: expected an object {dtype, shape, data_offsets}, received ${JSON.stringify(raw)}`);
  }
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== 'string') throw new Error(`${op}: expected a string dtype, received ${JSON.stringify(dtype)}`);
  // hasOwn, so that names like 'toString' are not found on Object.prototype
  if (!Object.hasOwn(FILE_DTYPES, dtype)) {
    throw new Error(`${op}: unsupported dtype ${dtype} (supported: ${Object.keys(FILE_DTYPES).join(', ')})`);
  }
  const fileDType = dtype as FileDType;
  if (!Array.isArray(shape) || !shape.every(isNonNegativeInt)) {
    throw new Error(`${op}: expected shape to be an array of non-negative integers, received ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInt) || offsets[0] > offsets[1]) {
    throw new Error(`${op}: expected data_offsets [begin, end] with 0 <= begin <= end, received ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  const numel = hostNumel(shape);
  const expectedBytes = numel * FILE_DTYPES[fileDType].bytes;
  if (end - begin !== expectedBytes) {
    throw new Error(
      `${op}: ${dtype} shape [${shape.join(',')}] needs ${expectedBytes} bytes, data_offsets [${begin},${end}] hold ${end - begin}`,
    );
  }
  return { name, dtype: fileDType, shape, begin, end };
}

function parseMetadata(raw: unknown): Record<string, string> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new Error(`readSafetensors: expected ${METADATA_KEY} to be an object of strings, received ${JSON.stringify(raw)}`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'string') {
      throw new Error(`readSafetensors: expected ${METADATA_KEY}['${k}'] to be a string, received ${JSON.stringify(v)}`);
    }
    out[k] = v;
  }
  return out;
}

/** Reads the 8-byte length and the JSON header; returns the entries and where the data buffer starts. */
function parseHeader(bytes: Uint8Array): { entries: HeaderEntry[]; metadata: Record<string, string>; dataStart: number } {
  if (bytes.length < 8) {
    throw new Error(`readSafetensors: expected at least 8 bytes (the header length), received ${bytes.length}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = view.getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) {
    throw new Error(`readSafetensors: expected a header of at most ${MAX_HEADER_BYTES} bytes, received a length of ${headerLen}`);
  }
  const n = Number(headerLen);
  if (8 + n > bytes.length) {
    throw new Error(`readSafetensors: header length ${n} runs past the end of the file (${bytes.length} bytes, header would end at ${8 + n})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new Error(`readSafetensors: expected a UTF-8 JSON header of ${n} bytes, could not parse it: ${(e as Error).message}`, { cause: e });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error(`readSafetensors: expected the header to be a JSON object, received ${Array.isArray(json) ? 'an array' : typeof json}`);
  }
  let metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, raw] of Object.entries(json)) {
    if (name === METADATA_KEY) metadata = parseMetadata(raw);
    else entries.push(parseEntry(name, raw));
  }
  return { entries, metadata, dataStart: 8 + n };
}

/**
 * Checks that the entries tile the data buffer exactly: no overlap, no hole, nothing past its end
 * (the format forbids holes so that a file cannot smuggle other content between tensors).
 * Returns the entries sorted by offset, the order in which a writer laid them out.
 */
function checkLayout(entries: HeaderEntry[], dataBytes: number): HeaderEntry[] {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev = '';
  for (const e of sorted) {
    if (e.end > dataBytes) {
      throw new Error(`readSafetensors: tensor '${e.name}' data_offsets [${e.begin},${e.end}] run past the data buffer (${dataBytes} bytes)`);
    }
    if (e.begin < pos) {
      throw new Error(`readSafetensors: tensor '${e.name}' data_offsets [${e.begin},${e.end}] overlap tensor '${prev}' (which ends at ${pos})`);
    }
    if (e.begin > pos) {
      throw new Error(`readSafetensors: expected tensor '${e.name}' to start at byte ${pos} of the data buffer, received ${e.begin} (a hole)`);
    }
    pos = e.end;
    prev = e.name;
  }
  if (pos !== dataBytes) {
    throw new Error(`readSafetensors: expected the tensors to cover the ${dataBytes}-byte data buffer, they end at byte ${pos}`);
  }
  return sorted;
}

/** Copies `bytes` into a fresh, aligned typed array of the file dtype's host dtype (F16 widened to float32). */
function typedFromBytes(dtype: FileDType, bytes: Uint8Array): HostTensor['data'] {
  // A fresh copy, not bytes.slice(): on a Node Buffer slice() is a view into a shared pool.
  const copy = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(copy).set(bytes);
  if (dtype === 'F16') return fromFloat16Array(new Uint16Array(copy));
  if (dtype === 'F32') return new Float32Array(copy);
  if (dtype === 'F64') return new Float64Array(copy);
  return new BigInt64Array(copy);
}

/**
 * Parses a whole safetensors file. The tensors come back in the order of their data in the file
 * (for files written by `writeSafetensors`, the order of the state dict that was written).
 */
export function readSafetensors(bytes: Uint8Array): { tensors: StateDict; metadata: Record<string, string> } {
  assertLittleEndianHost('readSafetensors');
  const { entries, metadata, dataStart } = parseHeader(bytes);
  const sorted = checkLayout(entries, bytes.length - dataStart);
  const tensors: StateDict = new Map();
  for (const e of sorted) {
    const data = typedFromBytes(e.dtype, bytes.subarray(dataStart + e.begin, dataStart + e.end));
    tensors.set(e.name, { dtype: FILE_DTYPES[e.dtype].host, shape: e.shape, data });
  }
  return { tensors, metadata };
}

function checkTensor(name: string, t: HostTensor): void {
  const op = `writeSafetensors: tensor '${name}'`;
  if (name === METADATA_KEY) throw new Error(`${op}: the name ${METADATA_KEY} is reserved for the metadata`);
  const arrays = { float32: Float32Array, float64: Float64Array, int64: BigInt64Array };
  const want = Object.hasOwn(arrays, t.dtype) ? arrays[t.dtype] : undefined;
  if (want === undefined) throw new Error(`${op}: unsupported dtype ${String(t.dtype)} (supported: float32, float64, int64)`);
  if (!(t.data instanceof want)) {
    throw new Error(`${op}: expected ${t.dtype} data in a ${want.name}, received a ${t.data.constructor.name}`);
  }
  if (!t.shape.every((d) => isNonNegativeInt(d))) throw new Error(`${op}: expected a shape of non-negative integers, received [${t.shape.join(',')}]`);
  if (t.data.length !== hostNumel(t.shape)) {
    throw new Error(`${op}: shape [${t.shape.join(',')}] needs ${hostNumel(t.shape)} elements, received ${t.data.length}`);
  }
}

/** A tensor's dtype and bytes as the file stores them: as it is, or floats as F16 with `half`. */
function fileBytes(t: HostTensor, half: boolean): { dtype: FileDType; bytes: Uint8Array } {
  if (half && t.dtype !== 'int64') {
    const h = toFloat16Array(t.data as Float32Array | Float64Array);
    return { dtype: 'F16', bytes: new Uint8Array(h.buffer, h.byteOffset, h.byteLength) };
  }
  return { dtype: HOST_TO_DTYPE[t.dtype], bytes: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) };
}

/**
 * Serialises tensors (in the map's order) and optional string metadata; with `half`, floating-point tensors as F16.
 * The header is padded with spaces so that the data buffer starts at a multiple of 8 bytes, letting readers view
 * it without copying.
 */
export function writeSafetensors(tensors: StateDict, metadata?: Record<string, string>, opts: WriteSafetensorsOptions = {}): Uint8Array {
  assertLittleEndianHost('writeSafetensors');
  // No prototype, so that a tensor named '__proto__' is an ordinary key.
  const header: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`writeSafetensors: expected metadata['${k}'] to be a string, received ${typeof v}`);
    }
    header[METADATA_KEY] = metadata;
  }
  let offset = 0;
  const parts: Uint8Array[] = [];
  for (const [name, t] of tensors) {
    checkTensor(name, t);
    const { dtype, bytes } = fileBytes(t, opts.half === true);
    const end = offset + bytes.byteLength;
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, end] };
    parts.push(bytes);
    offset = end;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLen = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  let pos = 8 + headerLen;
  for (const bytes of parts) {
    out.set(bytes, pos);
    pos += bytes.byteLength;
  }
  return out;
}

export function readSafetensorsFile(file: string): { tensors: StateDict; metadata: Record<string, string> } {
  const bytes = fs.readFileSync(file);
  try {
    return readSafetensors(bytes);
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * The header of a file without its data: the metadata and each tensor's file dtype, in header order (a few kB read,
 * e.g. to name a weights file in a message before it is loaded). The data buffer is not checked.
 */
export function readSafetensorsHeader(file: string): { metadata: Record<string, string>; dtypes: Map<string, string> } {
  const fd = fs.openSync(file, 'r');
  try {
    const head = new Uint8Array(8);
    const got = fs.readSync(fd, head, 0, 8, 0);
    const len = got === 8 ? new DataView(head.buffer).getBigUint64(0, true) : 0n;
    // a short file or a length beyond the cap: parseHeader says which; otherwise read the header and no more
    const n = len <= BigInt(MAX_HEADER_BYTES) ? Number(len) : 0;
    const bytes = new Uint8Array(8 + n);
    bytes.set(head.subarray(0, got));
    const read = n > 0 ? fs.readSync(fd, bytes, 8, n, 8) : 0;
    const { entries, metadata } = parseHeader(got < 8 || len !== BigInt(n) ? head.subarray(0, got) : bytes.subarray(0, 8 + read));
    return { metadata, dtypes: new Map(entries.map((e) => [e.name, e.dtype])) };
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`, { cause: e });
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes atomically: a temporary file in the same folder, flushed to disk, then renamed over `file`,
 * so that a crash leaves either the old file or the new one, never half of one.
 */
export function writeSafetensorsFile(file: string, tensors: StateDict, metadata?: Record<string, string>, opts: WriteSafetensorsOptions = {}): void {
  const bytes = writeSafetensors(tensors, metadata, opts);
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  let fd = -1;
  try {
    fd = fs.openSync(tmp, 'wx');
    fs.writeSync(fd, bytes);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = -1;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== -1) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  syncDirectory(dir);
}

/** Makes the rename itself durable where the platform allows fsync on a folder (POSIX); elsewhere a no-op. */
function syncDirectory(dir: string): void {
  let fd = -1;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Windows cannot open or fsync a folder; the file's own fsync is what we can offer there.
  } finally {
    if (fd !== -1) fs.closeSync(fd);
  }
}
