/**
 * Writes a state dict as a PyTorch `.pth` file that `torch.load(path)` reads straight into
 * `ResNet18().load_state_dict(...)`, in the zip format torch.save has used since PyTorch 1.6:
 *   archive/data.pkl    pickle protocol 2 of an OrderedDict {key: _rebuild_tensor_v2(storage, 0, size, stride,
 *                       False, OrderedDict())}, each storage a persistent id
 *                       ('storage', torch.FloatStorage|DoubleStorage|LongStorage, '<i>', 'cpu', numel)
 *   archive/byteorder   "little" (read by PyTorch >= 2.1; older versions ignore it)
 *   archive/data/<i>    the i-th tensor's elements, row-major, little-endian, 64-byte aligned like torch's own
 *   archive/version     "3"
 * Entries are stored uncompressed, as torch does; the timestamps are fixed so that equal inputs give equal files.
 *
 * What it is not: the legacy (pre-1.6) format, nor a writer of anything but flat dicts of float32/float64/int64
 * tensors. The OrderedDict carries no `_metadata` (module versions): load_state_dict does not need it when, as
 * here, BatchNorm's num_batches_tracked is present.
 *
 * References: torch/serialization.py (`_save`) and caffe2/serialize/inline_container.cc (the record layout) of
 * PyTorch 1.13; the pickle opcodes in ./pickle.ts; fflate's zipSync (the archive).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { zipSync, Zippable } from 'fflate';
import { HostDType, StateDict, hostNumel } from '../tensor/host';
import { PickleWriter } from './pickle';

const STORAGE_OF: Record<HostDType, string> = {
  float32: 'FloatStorage',
  float64: 'DoubleStorage',
  int64: 'LongStorage',
};

const ARCHIVE = 'archive';
/** torch aligns every record's data to 64 bytes (so that it can be memory-mapped); we do the same */
const ALIGN = 64;
/** the zip extra-field id torch's writer uses for its padding ('FB') */
const PAD_FIELD_ID = 0x4246;
const LOCAL_HEADER_BYTES = 30;
const FIXED_MTIME = new Date(2020, 0, 1, 0, 0, 0);

function rowMajorStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d];
  }
  return strides;
}

/** The data.pkl pickle: an OrderedDict of rebuilt tensors whose storages are numbered in order. */
export function statePickle(sd: StateDict): Uint8Array {
  const w = new PickleWriter().proto(2);
  w.global('collections', 'OrderedDict').emptyTuple().reduce().mark();
  let i = 0;
  for (const [key, t] of sd) {
    const storage = STORAGE_OF[t.dtype];
    if (storage === undefined) throw new Error(`writePth: tensor '${key}' has dtype ${String(t.dtype)}, expected one of ${Object.keys(STORAGE_OF).join(', ')}`);
    w.str(key).global('torch._utils', '_rebuild_tensor_v2').mark();
    w.mark().str('storage').global('torch', storage).str(String(i)).str('cpu').int(hostNumel(t.shape)).tuple().persId();
    w.int(0).intTuple(t.shape).intTuple(rowMajorStrides(t.shape)).bool(false);
    w.global('collections', 'OrderedDict').emptyTuple().reduce();
    w.tuple().reduce();
    i++;
  }
  return w.setItems().stop().finish();
}

function littleEndianBytes(key: string, data: ArrayBufferView, numel: number, expected: number): Uint8Array {
  if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) {
    throw new Error('writePth: expected a little-endian host, received a big-endian one');
  }
  if (data.byteLength !== numel * expected) {
    throw new Error(`writePth: tensor '${key}' has ${data.byteLength} bytes of data, its shape needs ${numel * expected}`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Serializes a state dict to the bytes of a zip-format .pth file. */
export function writePth(sd: StateDict): Uint8Array {
  const records: Array<[string, Uint8Array]> = [
    [`${ARCHIVE}/data.pkl`, statePickle(sd)],
    [`${ARCHIVE}/byteorder`, new TextEncoder().encode('little')],
  ];
  let i = 0;
  for (const [key, t] of sd) {
    const item = t.dtype === 'float32' ? 4 : 8;
    records.push([`${ARCHIVE}/data/${i++}`, littleEndianBytes(key, t.data, hostNumel(t.shape), item)]);
  }
  records.push([`${ARCHIVE}/version`, new TextEncoder().encode('3\n')]);

  const files: Zippable = {};
  let offset = 0;
  for (const [name, data] of records) {
    // local header, then the name, then our padding field (4 bytes of id and length, then `pad` zero bytes)
    const unpadded = offset + LOCAL_HEADER_BYTES + Buffer.byteLength(name) + 4;
    const pad = (ALIGN - (unpadded % ALIGN)) % ALIGN;
    files[name] = [data, { level: 0, mtime: FIXED_MTIME, extra: { [PAD_FIELD_ID]: new Uint8Array(pad) } }];
    offset = unpadded + pad + data.length;
  }
  return zipSync(files);
}

/** Writes a state dict to `file` as a zip-format .pth (through a temporary file, then a rename). */
export function writePthFile(file: string, sd: StateDict): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(tmp, writePth(sd));
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true }); // a failed write (a folder at `file`, a full disk) leaves no temp file behind
    throw err;
  }
}
