/**
 * Reading files written by torch.save itself (PyTorch 1.13, scripts/fixtures/make_interop.py): both formats,
 * pickle protocol 4, the seed's keys, dtypes, views and non-contiguous tensors, and the errors.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Zip, ZipDeflate, ZipPassThrough, unzipSync, zipSync } from 'fflate';
import { readPth, readPthFile } from '../../src/interop/pth-read';
import type { StateDict } from '../../src/tensor/host';
import { fixtureKeyShapes } from '../helpers/fixture-values';
import { interopFixture, tensorOf } from './helpers';

/** The seed's keys and shapes at make_interop.py's tiny widths: every width of 64 or more divided by 16. */
function tinyKeyShapes(): Array<[string, number[]]> {
  return fixtureKeyShapes(10).map(({ key, shape }) => [key, shape.map((d) => (d >= 64 ? d / 16 : d))]);
}

function expectSameStateDict(a: StateDict, b: StateDict, what: string): void {
  assert.deepEqual([...a.keys()], [...b.keys()], `${what}: keys`);
  for (const [k, t] of a) {
    const u = tensorOf(b, k);
    assert.equal(u.dtype, t.dtype, `${what}: ${k} dtype`);
    assert.deepEqual(u.shape, t.shape, `${what}: ${k} shape`);
    assert.deepEqual(u.data, t.data, `${what}: ${k} values`);
  }
}

describe('readPth: the seed model (reduced width) saved by torch.save', () => {
  const zip = readPthFile(interopFixture('tiny_zip.pth'));
  const legacy = readPthFile(interopFixture('tiny_legacy.pth'));

  test('zip format: every seed key in order, with its shape and dtype', () => {
    assert.equal(zip.container, 'zip');
    const expected = tinyKeyShapes();
    assert.deepEqual([...zip.stateDict.keys()], expected.map(([k]) => k));
    for (const [k, shape] of expected) {
      const t = tensorOf(zip.stateDict, k);
      assert.deepEqual(t.shape, shape, k);
      assert.equal(t.dtype, k.endsWith('num_batches_tracked') ? 'int64' : 'float32', k);
    }
    assert.equal(tensorOf(zip.stateDict, 'conv1.1.num_batches_tracked').data[0], 3n);
    assert.deepEqual(zip.notes, []);
  });

  test('BatchNorm running statistics are the trained-looking ones (not 0 and 1)', () => {
    const v = tensorOf(zip.stateDict, 'layer2.0.left.4.running_var').data as Float32Array;
    const m = tensorOf(zip.stateDict, 'layer2.0.left.4.running_mean').data as Float32Array;
    assert.ok(v.some((x) => Math.abs(x - 1) > 0.05) && m.some((x) => Math.abs(x) > 0.01));
  });

  test('legacy format gives the same tensors, bit for bit', () => {
    assert.equal(legacy.container, 'legacy');
    assert.match(legacy.notes.join(' '), /legacy/);
    expectSameStateDict(legacy.stateDict, zip.stateDict, 'legacy vs zip');
  });

  test('nn.DataParallel: keys keep their module. prefix here (loadWeights strips it)', () => {
    const dp = readPthFile(interopFixture('tiny_dataparallel.pth')).stateDict;
    assert.deepEqual([...dp.keys()], [...zip.stateDict.keys()].map((k) => `module.${k}`));
  });
});

describe('readPth: dtypes, views and strides', () => {
  const base = Float32Array.from({ length: 12 }, (_, i) => i / 4);
  for (const file of ['dtypes_zip.pth', 'dtypes_legacy.pth', 'dtypes_proto4.pth']) {
    test(file, () => {
      const sd = readPthFile(interopFixture(file)).stateDict;
      assert.deepEqual(tensorOf(sd, 'base').data, base);
      // base.reshape(3,4).t(): shape [4,3], element (i,j) = base[4j + i]
      const tr = tensorOf(sd, 'transposed');
      assert.deepEqual(tr.shape, [4, 3]);
      assert.deepEqual(tr.data, Float32Array.from({ length: 12 }, (_, n) => base[4 * (n % 3) + Math.floor(n / 3)]));
      // base[5:9]: offset 5 into the shared storage
      assert.deepEqual(tensorOf(sd, 'view').data, base.slice(5, 9));
      const scalar = tensorOf(sd, 'scalar');
      assert.deepEqual([scalar.shape, [...scalar.data]], [[], [2.5]]);
      const i64 = tensorOf(sd, 'i64');
      assert.deepEqual([i64.dtype, i64.shape, [...i64.data]], ['int64', [2, 2], [-3n, 0n, 2n ** 40n, 7n]]);
      const f64 = tensorOf(sd, 'f64');
      assert.deepEqual([f64.dtype, f64.shape], ['float64', [2, 3]]);
    });
  }

  test('float64 values agree between the formats', () => {
    const a = tensorOf(readPthFile(interopFixture('dtypes_zip.pth')).stateDict, 'f64').data;
    const b = tensorOf(readPthFile(interopFixture('dtypes_legacy.pth')).stateDict, 'f64').data;
    assert.deepEqual(a, b);
    assert.ok((a as Float64Array).every((x) => x !== 0 && Number.isFinite(x)));
  });
});

describe('readPth: files that are not plain state dicts, and errors', () => {
  test('an unsupported dtype names the tensor, the dtype and what is supported', () => {
    assert.throws(
      () => readPthFile(interopFixture('half.pth')),
      /half\.pth: readPth: tensor 'weight' has dtype float16 \(torch\.HalfStorage\), which is not supported \(supported: float32, float64, int64\)/,
    );
  });

  test('a whole pickled module and a TorchScript archive are refused, saying what to save instead', () => {
    assert.throws(
      () => readPthFile(interopFixture('whole_module.pth')),
      /readPth: the file holds a Python object of torch\.nn\.modules\.linear\.Linear, expected only a dict of tensors \(save model\.state_dict\(\), not the model\)/,
    );
    assert.throws(() => readPthFile(interopFixture('torchscript.pt')), /readPth: this is a TorchScript archive \(torch\.jit\.save\)/);
  });

  test('a training dict: the state dict under \'state_dict\' is taken, other entries noted', () => {
    const r = readPthFile(interopFixture('nested.pth'));
    assert.deepEqual([...r.stateDict.keys()], ['weight', 'bias']);
    assert.deepEqual(r.notes, ["took the state dict under key 'state_dict' of the saved dict"]);
  });

  test('a truncated legacy file says which storage is short', () => {
    const bytes = fs.readFileSync(interopFixture('tiny_legacy.pth'));
    assert.throws(() => readPth(bytes.subarray(0, bytes.length - 100)), /readPth: storage '\d+': expected \d+ bytes, file truncated/);
  });

  test('a truncated zip is refused', () => {
    const bytes = fs.readFileSync(interopFixture('tiny_zip.pth'));
    assert.throws(() => readPth(bytes.subarray(0, bytes.length - 30)), /readPth: expected a complete zip archive, received invalid zip data \(truncated or corrupt file\?\)/);
  });

  test('something else is refused with its first bytes', () => {
    assert.throws(() => readPth(new TextEncoder().encode('hello world')), /expected a torch\.save file .* received bytes 68 65 6c 6c/);
  });
});

/**
 * The tiny fixture's entries re-zipped with the entry `name` (a new one, or one of the fixture's, replaced) holding
 * `mib` MiB of zeros, deflated (about 1 KiB per MiB) and streamed in 1 MiB pieces, so that making it never holds
 * the inflated size.
 */
function withBomb(mib: number, name = 'tiny_zip/data/bomb'): Uint8Array {
  const parts: Uint8Array[] = [];
  const zip = new Zip((err, chunk) => {
    if (err) throw err;
    parts.push(chunk);
  });
  for (const [entry, data] of Object.entries(unzipSync(fs.readFileSync(interopFixture('tiny_zip.pth'))))) {
    if (entry === name) continue;
    const f = new ZipPassThrough(entry);
    zip.add(f);
    f.push(data, true);
  }
  const bomb = new ZipDeflate(name, { level: 6 });
  zip.add(bomb);
  const zeros = new Uint8Array(1024 * 1024);
  for (let i = 0; i < mib; i++) bomb.push(zeros, i === mib - 1);
  zip.end();
  return Buffer.concat(parts);
}

/** Sets the uncompressed size that the central directory and the local header declare for entry `name`. */
function declareSize(zip: Uint8Array, name: string, size: number): void {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  // the last occurrence of the name is the central directory's, which follows every entry's data
  const central = Buffer.from(zip.buffer, zip.byteOffset, zip.byteLength).lastIndexOf(name) - 46;
  assert.equal(view.getUint32(central, true), 0x02014b50, `the central directory header of ${name}`);
  view.setUint32(central + 24, size, true);
  view.setUint32(view.getUint32(central + 42, true) + 22, size, true);
}

describe('readPth: zip bombs are refused before they are inflated', () => {
  test('200 MiB declared from a 0.4 MiB file: refused from the central directory, naming the sizes, without the memory', () => {
    const bomb = withBomb(200);
    assert.ok(bomb.length < 512 * 1024, `the bomb is ${bomb.length} bytes on disk`);
    const peakBefore = process.resourceUsage().maxRSS; // KiB
    assert.throws(() => readPth(bomb), /readPth: zip: the entries declare 200\.\d MiB uncompressed in a file of 0\.\d MiB, more than the limit of 128\.0 MiB \(a zip bomb\? nothing was inflated\)/);
    const grewMiB = (process.resourceUsage().maxRSS - peakBefore) / 1024;
    assert.ok(grewMiB < 64, `the peak memory grew by ${grewMiB.toFixed(0)} MiB while refusing`);
  });

  test('an 8 MiB entry from 8 KiB compressed: refused by its ratio though the total is under the limit', () => {
    assert.throws(() => readPth(withBomb(8)), /readPth: zip: entry 'tiny_zip\/data\/bomb' declares 8\.0 MiB from \d+ compressed bytes, more than 256 times/);
  });

  test('a storage that inflates to more than its central directory declares is stopped there', () => {
    const zip = withBomb(2, 'tiny_zip/data/0');
    declareSize(zip, 'tiny_zip/data/0', 1000);
    assert.throws(() => readPth(zip), /readPth: zip: entry 'tiny_zip\/data\/0' inflates to more than the 1000 bytes it declares/);
  });

  test('a deflated archive (re-zipped by hand) reads the same state dict as the stored one', () => {
    const stored = fs.readFileSync(interopFixture('tiny_zip.pth'));
    const deflated = zipSync(unzipSync(stored), { level: 6 });
    assert.ok(deflated.length < stored.length, 'the entries are deflated');
    expectSameStateDict(readPth(deflated).stateDict, readPth(stored).stateDict, 'deflated vs stored');
  });
});
