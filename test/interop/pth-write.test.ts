/**
 * Writing .pth files (src/interop/pth-write.ts): what we write reads back the same; its pickle describes the
 * tensors exactly as torch.save's own does (compared against a file torch wrote); the zip layout is torch's
 * (records under one folder, stored, 64-byte aligned, version and byteorder). That PyTorch's torch.load accepts
 * the result was checked by hand (docs/interop.md, "Checked with PyTorch").
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { unzipSync } from 'fflate';
import { readPth, readPthFile } from '../../src/interop/pth-read';
import { statePickle, writePth, writePthFile } from '../../src/interop/pth-write';
import { PyDict, unpickle } from '../../src/interop/pickle';
import type { StateDict } from '../../src/tensor/host';
import { interopFixture, tempDir } from './helpers';

/** data.pkl as a plain structure: key → [storage type, storage key, numel, offset, size, stride]. */
function describePickle(pkl: Uint8Array): Array<[unknown, unknown[]]> {
  const { value } = unpickle(pkl, 0, {
    findClass: (m, n) => {
      if (m === 'collections' && n === 'OrderedDict') return () => new PyDict();
      if (m === 'torch._utils' && n === '_rebuild_tensor_v2') {
        return (storage: unknown[], offset: number, size: number[], stride: number[], grad: boolean) => [storage, offset, size, stride, grad];
      }
      return `${m}.${n}`;
    },
    persistentLoad: (pid) => pid,
  });
  assert.ok(value instanceof PyDict);
  return [...value.entries()] as Array<[unknown, unknown[]]>;
}

function pickleOf(zipBytes: Uint8Array): Uint8Array {
  const files = unzipSync(zipBytes);
  const name = Object.keys(files).find((n) => n.endsWith('/data.pkl'));
  assert.ok(name !== undefined, 'data.pkl in the archive');
  return files[name];
}

function expectSame(a: StateDict, b: StateDict): void {
  assert.deepEqual([...a.keys()], [...b.keys()]);
  for (const [k, t] of a) assert.deepEqual(b.get(k), { dtype: t.dtype, shape: [...t.shape], data: t.data }, k);
}

/** Offsets of each local record's data, from the local headers (30 bytes + name + extra field). */
function dataOffsets(zip: Uint8Array): Map<string, { at: number; method: number }> {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const out = new Map<string, { at: number; method: number }>();
  let p = 0;
  while (view.getUint32(p, true) === 0x04034b50) {
    const method = view.getUint16(p + 8, true);
    const size = view.getUint32(p + 18, true);
    const nameLen = view.getUint16(p + 26, true);
    const extraLen = view.getUint16(p + 28, true);
    const name = new TextDecoder().decode(zip.subarray(p + 30, p + 30 + nameLen));
    const at = p + 30 + nameLen + extraLen;
    out.set(name, { at, method });
    p = at + size;
  }
  return out;
}

describe('writePth', () => {
  const torchMade = readPthFile(interopFixture('tiny_zip.pth')).stateDict;

  test('round trip: the seed keys (tiny widths) read back identical', () => {
    expectSame(torchMade, readPth(writePth(torchMade)).stateDict);
  });

  test('round trip: float64, int64, 0-d; a non-contiguous tensor comes back contiguous with its values', () => {
    const sd = readPthFile(interopFixture('dtypes_legacy.pth')).stateDict;
    expectSame(sd, readPth(writePth(sd)).stateDict);
  });

  test('the pickle says what torch.save\'s says, storage for storage', () => {
    const ours = describePickle(statePickle(torchMade));
    const theirs = describePickle(pickleOf(fs.readFileSync(interopFixture('tiny_zip.pth'))));
    assert.equal(ours.length, 122);
    assert.deepEqual(ours, theirs);
  });

  test('zip layout: one folder, torch\'s record names, stored and 64-byte aligned', () => {
    const zip = writePth(torchMade);
    const records = dataOffsets(zip);
    const names = [...records.keys()];
    assert.deepEqual(names.slice(0, 2), ['archive/data.pkl', 'archive/byteorder']);
    assert.deepEqual(names.slice(2, -1), Array.from({ length: torchMade.size }, (_, i) => `archive/data/${i}`));
    assert.equal(names[names.length - 1], 'archive/version');
    for (const [name, { at, method }] of records) {
      assert.equal(method, 0, `${name} stored, not deflated`);
      assert.equal(at % 64, 0, `${name} data at ${at}, expected a multiple of 64`);
    }
    const files = unzipSync(zip);
    assert.equal(new TextDecoder().decode(files['archive/version']), '3\n');
    assert.equal(new TextDecoder().decode(files['archive/byteorder']), 'little');
  });

  test('deterministic: the same state dict gives the same bytes', () => {
    assert.deepEqual(writePth(torchMade), writePth(torchMade));
  });

  test('writePthFile writes through a temporary file and leaves only the result', () => {
    const { dir, remove } = tempDir();
    try {
      const file = path.join(dir, 'w.pth');
      writePthFile(file, torchMade);
      assert.deepEqual(fs.readdirSync(dir), ['w.pth']);
      expectSame(torchMade, readPthFile(file).stateDict);
    } finally {
      remove();
    }
  });
});
