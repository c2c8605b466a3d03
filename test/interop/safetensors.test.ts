/**
 * Tests of the safetensors reader/writer: round trips, the exact bytes of tiny files built by hand from the
 * format description, and clear errors (not crashes) on malformed files.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  readSafetensors,
  readSafetensorsFile,
  writeSafetensors,
  writeSafetensorsFile,
} from '../../src/interop/safetensors';
import { StateDict, hostFloat32, hostInt64Scalar } from '../../src/tensor/host';

/** A file from its parts, as the format describes it: u64 LE header length, the header bytes, the data. */
function buildFile(header: string, data: number[]): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function sampleDict(): StateDict {
  const sd: StateDict = new Map();
  sd.set('conv.weight', hostFloat32([2, 1, 3, 3], Float32Array.from({ length: 18 }, (_, i) => i * 0.5 - 4)));
  sd.set('bn.num_batches_tracked', hostInt64Scalar(123456789012345n));
  sd.set('stats', { dtype: 'float64', shape: [3], data: Float64Array.of(Math.PI, -1e-300, 1e300) });
  sd.set('empty', hostFloat32([0, 4]));
  sd.set('bn.running_var', hostFloat32([5], Float32Array.of(1, 2, 3, NaN, -Infinity)));
  return sd;
}

describe('safetensors round trip', () => {
  test('keeps names, order, dtypes, shapes, values and metadata', () => {
    const sd = sampleDict();
    const { tensors, metadata } = readSafetensors(writeSafetensors(sd, { format: 'pt', note: 'é ✓' }));
    assert.deepEqual([...tensors.keys()], [...sd.keys()]);
    for (const [k, t] of sd) {
      const r = tensors.get(k)!;
      assert.equal(r.dtype, t.dtype, k);
      assert.deepEqual(r.shape, t.shape, k);
      assert.deepEqual(r.data, t.data, k);
    }
    assert.deepEqual(metadata, { format: 'pt', note: 'é ✓' });
  });

  test('keeps odd names such as __proto__', () => {
    const sd: StateDict = new Map([['__proto__', hostFloat32([1], Float32Array.of(3))], ['a.b', hostFloat32([0])]]);
    const { tensors } = readSafetensors(writeSafetensors(sd));
    assert.deepEqual([...tensors.keys()], ['__proto__', 'a.b']);
    assert.deepEqual(tensors.get('__proto__')!.data, Float32Array.of(3));
  });

  test('without metadata, and with an empty state dict', () => {
    assert.deepEqual(readSafetensors(writeSafetensors(sampleDict())).metadata, {});
    const empty = readSafetensors(writeSafetensors(new Map()));
    assert.equal(empty.tensors.size, 0);
  });

  test('starts the data 8-byte aligned', () => {
    const bytes = writeSafetensors(sampleDict(), { a: 'b' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal(n % 8, 0);
  });

  test('through files, atomically, leaving no temporary file behind', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'safetensors-test-'));
    try {
      const file = path.join(dir, 'model.safetensors');
      writeSafetensorsFile(file, new Map([['x', hostFloat32([1], Float32Array.of(1))]]));
      writeSafetensorsFile(file, sampleDict(), { step: '2' });
      assert.deepEqual(fs.readdirSync(dir), ['model.safetensors']);
      const { tensors, metadata } = readSafetensorsFile(file);
      assert.deepEqual([...tensors.keys()], [...sampleDict().keys()]);
      assert.deepEqual(metadata, { step: '2' });
      assert.throws(() => writeSafetensorsFile(path.join(dir, 'missing', 'm.safetensors'), sampleDict()), /ENOENT/);
      fs.writeFileSync(path.join(dir, 'bad.safetensors'), Uint8Array.of(1, 2, 3));
      assert.throws(() => readSafetensorsFile(path.join(dir, 'bad.safetensors')), /bad\.safetensors: readSafetensors: expected at least 8 bytes/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('safetensors bytes', () => {
  // F32 [2] = [1, -2]: 0x3f800000, 0xc0000000; I64 [] = 5; little-endian.
  const data = [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 5, 0, 0, 0, 0, 0, 0, 0];
  const json =
    '{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
    '"n":{"dtype":"I64","shape":[],"data_offsets":[8,16]}}';

  test('the writer produces exactly the hand-built file', () => {
    const padded = json + ' '.repeat((8 - (json.length % 8)) % 8);
    const expected = buildFile(padded, data);
    const sd: StateDict = new Map([
      ['a', hostFloat32([2], Float32Array.of(1, -2))],
      ['n', hostInt64Scalar(5)],
    ]);
    assert.deepEqual(writeSafetensors(sd, { k: 'v' }), expected);
  });

  test('the reader accepts an unpadded header, unaligned data and any key order', () => {
    const reordered =
      '{"n":{"dtype":"I64","shape":[],"data_offsets":[8,16]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
    assert.notEqual(reordered.length % 8, 0);
    const { tensors, metadata } = readSafetensors(buildFile(reordered, data));
    assert.deepEqual([...tensors.keys()], ['a', 'n']);
    assert.deepEqual(tensors.get('a'), { dtype: 'float32', shape: [2], data: Float32Array.of(1, -2) });
    assert.deepEqual(tensors.get('n'), { dtype: 'int64', shape: [], data: BigInt64Array.of(5n) });
    assert.deepEqual(metadata, {});
  });

  test('reads from a view into a larger buffer (a Node Buffer slice)', () => {
    const file = buildFile(json, data);
    const big = Buffer.alloc(file.length + 13);
    big.set(file, 5);
    const { tensors } = readSafetensors(big.subarray(5, 5 + file.length));
    assert.deepEqual(tensors.get('a')!.data, Float32Array.of(1, -2));
  });
});

describe('safetensors malformed input', () => {
  const entry = (dtype: string, shape: number[], offsets: number[]): string =>
    JSON.stringify({ dtype, shape, data_offsets: offsets });
  const eight = [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40];

  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['a short file', Uint8Array.of(1, 0, 0), /expected at least 8 bytes.*received 3/],
    ['a header length beyond the file', buildFile('{}', []).map((b, i) => (i === 0 ? 200 : b)), /header length 200 runs past the end of the file \(10 bytes/],
    ['a huge header length', Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0x80, 0x7b), /at most 100000000 bytes/],
    ['bad JSON', buildFile('{"a":', []), /could not parse/],
    ['invalid UTF-8', buildFile('{}', []).map((b, i) => (i === 9 ? 0xff : b)), /could not parse/],
    ['a header that is not an object', buildFile('[1,2]', []), /header to be a JSON object, received an array/],
    ['an entry that is not an object', buildFile('{"a":3}', []), /tensor 'a': expected an object/],
    ['an unsupported dtype', buildFile(`{"w":${entry('BF16', [4], [0, 8])}}`, eight), /tensor 'w': unsupported dtype BF16/],
    ['an unknown dtype', buildFile(`{"w":${entry('Q4', [1], [0, 8])}}`, eight), /tensor 'w': unsupported dtype Q4/],
    ['a dtype named like an Object method', buildFile(`{"w":${entry('toString', [1], [0, 8])}}`, eight), /tensor 'w': unsupported dtype toString/],
    ['a bad shape', buildFile(`{"w":${entry('F32', [-2], [0, 8])}}`, eight), /tensor 'w': expected shape.*\[-2\]/],
    ['reversed offsets', buildFile(`{"w":${entry('F32', [2], [8, 0])}}`, eight), /tensor 'w': expected data_offsets/],
    ['a size that does not match the shape', buildFile(`{"w":${entry('F32', [3], [0, 8])}}`, eight), /F32 shape \[3\] needs 12 bytes, data_offsets \[0,8\] hold 8/],
    ['offsets beyond the data', buildFile(`{"w":${entry('F64', [2], [0, 16])}}`, eight), /'w' data_offsets \[0,16\] run past the data buffer \(8 bytes\)/],
    ['overlapping tensors', buildFile(`{"a":${entry('F32', [2], [0, 8])},"b":${entry('F32', [1], [4, 8])}}`, eight), /'b' data_offsets \[4,8\] overlap tensor 'a'/],
    ['a hole', buildFile(`{"a":${entry('F32', [1], [4, 8])}}`, eight), /'a' to start at byte 0.*received 4 \(a hole\)/],
    ['trailing bytes', buildFile(`{"a":${entry('F32', [1], [0, 4])}}`, eight), /cover the 8-byte data buffer, they end at byte 4/],
    ['metadata that is not strings', buildFile('{"__metadata__":{"a":1}}', []), /__metadata__\['a'\] to be a string/],
  ];
  for (const [what, bytes, message] of cases) {
    test(`rejects ${what}`, () => {
      assert.throws(() => readSafetensors(bytes), (e: Error) => {
        assert.match(e.message, /^readSafetensors: /);
        assert.match(e.message, message);
        return true;
      });
    });
  }

  test('the writer rejects inconsistent tensors', () => {
    const bad = (t: unknown): StateDict => new Map([['w', t as never]]);
    assert.throws(() => writeSafetensors(bad({ dtype: 'float32', shape: [3], data: new Float32Array(2) })), /tensor 'w': shape \[3\] needs 3 elements, received 2/);
    assert.throws(() => writeSafetensors(bad({ dtype: 'float32', shape: [2], data: new Float64Array(2) })), /tensor 'w': expected float32 data in a Float32Array, received a Float64Array/);
    assert.throws(() => writeSafetensors(bad({ dtype: 'bfloat16', shape: [2], data: new Float32Array(2) })), /tensor 'w': unsupported dtype bfloat16/);
    assert.throws(() => writeSafetensors(new Map([['__metadata__', hostFloat32([1])]])), /reserved/);
  });
});
