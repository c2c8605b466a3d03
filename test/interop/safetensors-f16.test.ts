/**
 * Half precision (F16) in safetensors: the float32 → binary16 rounding against written-out bit patterns and against
 * numpy's astype(float16) (test/fixtures/interop/float16.json, made by scripts/fixtures/make_float16.py), a file
 * numpy's bytes made by hand read back, our F16 files' layout, and a full-size ResNet-18 written in F16 giving the
 * float32 weights' logits within half precision's tolerance.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { float16BitsToFloat32, float32ToFloat16Bits } from '../../src/interop/float16';
import { readSafetensors, readSafetensorsFile, readSafetensorsHeader, writeSafetensors } from '../../src/interop/safetensors';
import { loadWeights } from '../../src/interop/weights';
import { runExport } from '../../src/cli/commands/export';
import { modelFromWeights } from '../../src/models';
import { Tensor, noGrad } from '../../src/tensor';
import { getBackend } from '../../src/backend';
import { StateDict, hostFloat32, hostInt64Scalar, type HostTensor } from '../../src/tensor/host';
import { firstImages, interopFixture, referenceLogits, seedFixtureStateDict, tempDir } from './helpers';
import { expectClose } from '../helpers/close';

const isHalfNaN = (h: number): boolean => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;

describe('float32 → float16, round to nearest even', () => {
  // bit patterns from the IEEE 754 binary16 layout (1 sign, 5 exponent bits with bias 15, 10 mantissa bits)
  const cases: [number, number, string][] = [
    [1.0, 0x3c00, 'one'], [-2.0, 0xc000, 'minus two'], [0.5, 0x3800, 'a half'], [65504, 0x7bff, 'the largest finite'],
    [65519, 0x7bff, 'just below the overflow tie'], [65520, 0x7c00, 'the overflow tie, to even: infinity'],
    [1e10, 0x7c00, 'far above: infinity'], [1 / 3, 0x3555, 'a third, rounded down'], [0.1, 0x2e66, '0.1'],
    [1 + 2 ** -11, 0x3c00, 'a tie at one, to the even 0x3c00'], [1 + 3 * 2 ** -11, 0x3c02, 'a tie, to the even 0x3c02'],
    [1 + 2 ** -11 + 2 ** -20, 0x3c01, 'just above a tie: up'], [2049, 0x6800, '2049, a tie: to 2048'],
    [2 ** -14, 0x0400, 'the smallest normal'], [2 ** -14 - 2 ** -24, 0x03ff, 'the largest subnormal'],
    [1023.5 * 2 ** -24, 0x0400, 'a tie above the largest subnormal: to the smallest normal'],
    [2 ** -24, 0x0001, 'the smallest subnormal'], [3 * 2 ** -25, 0x0002, '1.5 units, a tie: to the even 2'],
    [2 ** -25, 0x0000, 'half a unit, a tie: to the even 0'], [1.5 * 2 ** -25, 0x0001, 'three quarters of a unit: up'],
    [2 ** -26, 0x0000, 'a quarter of a unit: zero'], [-1e-30, 0x8000, 'a tiny negative: minus zero'],
    [-0, 0x8000, 'minus zero'], [Infinity, 0x7c00, 'infinity'], [-Infinity, 0xfc00, 'minus infinity'],
  ];
  for (const [x, bits, what] of cases) {
    test(`${what}: ${x} → 0x${bits.toString(16).padStart(4, '0')}`, () => {
      assert.equal(float32ToFloat16Bits(x).toString(16), bits.toString(16));
    });
  }

  test('NaN stays NaN, with its sign', () => {
    assert.ok(isHalfNaN(float32ToFloat16Bits(NaN)));
    const negNaN = new Float32Array(new Uint32Array([0xffc00000]).buffer)[0];
    const h = float32ToFloat16Bits(negNaN);
    assert.ok(isHalfNaN(h) && (h & 0x8000) !== 0, `0x${h.toString(16)}`);
    // a payload only in the low bits, which the 13 dropped bits would lose, must not turn into infinity
    const lowPayload = new Float32Array(new Uint32Array([0x7f800001]).buffer)[0];
    assert.ok(isHalfNaN(float32ToFloat16Bits(lowPayload)));
  });

  test('agrees with numpy astype(float16) on 4000 random values and the edges (NaN: any NaN of the same sign)', () => {
    const fx = JSON.parse(fs.readFileSync(interopFixture('float16.json'), 'utf8')) as { f32_bits: number[]; f16_bits: number[] };
    assert.ok(fx.f32_bits.length > 4000);
    const asF32 = new Float32Array(new Uint32Array(fx.f32_bits).buffer);
    const bad: string[] = [];
    fx.f32_bits.forEach((b, i) => {
      const got = float32ToFloat16Bits(asF32[i]);
      const want = fx.f16_bits[i];
      const ok = isHalfNaN(want) ? isHalfNaN(got) && (got & 0x8000) === (want & 0x8000) : got === want;
      if (!ok) bad.push(`f32 0x${b.toString(16)} (${asF32[i]}): 0x${got.toString(16)}, numpy 0x${want.toString(16)}`);
    });
    assert.deepEqual(bad.slice(0, 10), [], `${bad.length} mismatches`);
  });
});

describe('float16 → float32', () => {
  test('written-out values', () => {
    const cases: [number, number][] = [[0x3c00, 1], [0xc000, -2], [0x7bff, 65504], [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24],
      [0x0400, 2 ** -14], [0x3555, 0.333251953125], [0x7c00, Infinity], [0xfc00, -Infinity], [0x0000, 0]];
    for (const [h, v] of cases) assert.equal(float16BitsToFloat32(h), v, `0x${h.toString(16)}`);
    assert.ok(Object.is(float16BitsToFloat32(0x8000), -0));
    assert.ok(Number.isNaN(float16BitsToFloat32(0x7e00)) && Number.isNaN(float16BitsToFloat32(0xfc01)));
  });

  test('every one of the 65536 patterns but NaNs survives float16 → float32 → float16 unchanged', () => {
    let nans = 0;
    for (let h = 0; h < 0x10000; h++) {
      const v = float16BitsToFloat32(h);
      if (isHalfNaN(h)) {
        nans++;
        assert.ok(Number.isNaN(v), `0x${h.toString(16)}`);
        continue;
      }
      const back = float32ToFloat16Bits(v);
      if (back !== h) assert.fail(`0x${h.toString(16)} → ${v} → 0x${back.toString(16)}`);
    }
    assert.equal(nans, 2 * 1023); // 1023 non-zero mantissas, two signs
  });
});

describe('safetensors F16', () => {
  test('reads a file whose F16, F32 and I64 data numpy wrote, F16 as float32', () => {
    const fx = JSON.parse(fs.readFileSync(interopFixture('float16.json'), 'utf8')) as { file: { w: number[]; b: number[]; n: number } };
    const { tensors, metadata } = readSafetensorsFile(interopFixture('half.safetensors'));
    assert.deepEqual(metadata, { format: 'pt' });
    assert.deepEqual([...tensors.keys()], ['w', 'b', 'n']);
    const w = tensors.get('w')!;
    assert.equal(w.dtype, 'float32');
    assert.deepEqual(w.shape, [2, 3]);
    assert.deepEqual(w.data, Float32Array.from(fx.file.w));
    assert.ok(Object.is((w.data as Float32Array)[5], -0));
    assert.deepEqual(tensors.get('b')!.data, Float32Array.from(fx.file.b));
    assert.equal((tensors.get('n')!.data as BigInt64Array)[0], BigInt(fx.file.n));
  });

  test('{ half: true } stores floats as F16 (2 bytes each, rounded), keeps int64, and reads back as float32', () => {
    const sd: StateDict = new Map<string, HostTensor>([
      ['w', hostFloat32([4], Float32Array.of(1, 65520, 1 + 2 ** -11, 0.1))],
      ['d', { dtype: 'float64', shape: [1], data: Float64Array.of(-2) }],
      ['n', hostInt64Scalar(5n)],
    ]);
    const bytes = writeSafetensors(sd, { format: 'pt' }, { half: true });
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen))) as Record<string, { dtype: string; data_offsets: number[] }>;
    assert.deepEqual([header.w.dtype, header.d.dtype, header.n.dtype], ['F16', 'F16', 'I64']);
    assert.deepEqual([header.w.data_offsets, header.d.data_offsets, header.n.data_offsets], [[0, 8], [8, 10], [10, 18]]);
    const data = new Uint16Array(bytes.slice(8 + headerLen, 8 + headerLen + 10).buffer);
    assert.deepEqual([...data], [0x3c00, 0x7c00, 0x3c00, 0x2e66, 0xc000]);
    const back = readSafetensors(bytes).tensors;
    assert.deepEqual(back.get('w')!.data, Float32Array.of(1, Infinity, 1, 0.0999755859375));
    assert.equal(back.get('d')!.dtype, 'float32');
    assert.equal((back.get('n')!.data as BigInt64Array)[0], 5n);
  });

  test('readSafetensorsHeader gives metadata and dtypes without the data, and names a damaged file', () => {
    const t = tempDir();
    try {
      const file = path.join(t.dir, 'm.safetensors');
      const sd: StateDict = new Map([['a', hostFloat32([3])], ['n', hostInt64Scalar(1n)]]);
      fs.writeFileSync(file, writeSafetensors(sd, { test_accuracy: '0.9' }, { half: true }));
      const h = readSafetensorsHeader(file);
      assert.deepEqual(h.metadata, { test_accuracy: '0.9' });
      assert.deepEqual([...h.dtypes], [['a', 'F16'], ['n', 'I64']]);
      fs.writeFileSync(file, fs.readFileSync(file).subarray(0, 20));
      assert.throws(() => readSafetensorsHeader(file), /m\.safetensors: readSafetensors: header length \d+ runs past the end of the file \(20 bytes/);
      fs.writeFileSync(file, Buffer.from([1, 2, 3]));
      assert.throws(() => readSafetensorsHeader(file), /expected at least 8 bytes/);
    } finally {
      t.remove();
    }
  });
});

function logitsOf(sd: StateDict, x: HostTensor): Float32Array {
  const { model } = modelFromWeights(sd, { where: 'logitsOf' });
  try {
    return noGrad(() => {
      const input = Tensor.fromArray(x.data as Float32Array, [...x.shape]);
      const out = model.forward(input);
      const values = Float32Array.from(out.toArray() as Float32Array);
      out.dispose();
      input.dispose();
      return values;
    });
  } finally {
    model.dispose();
  }
}

describe('a full-size ResNet-18 in half precision', () => {
  test('resnet export --dtype f16 writes an F16 file that half the size loads and gives the float32 logits within 0.5%', async () => {
    const t = tempDir();
    try {
      const seed = seedFixtureStateDict();
      const f32 = path.join(t.dir, 'seed.safetensors');
      fs.writeFileSync(f32, writeSafetensors(seed));
      const out = path.join(t.dir, 'seed-f16.safetensors');
      const r = await runExport({ weights: f32, out, dtype: 'f16' });
      assert.ok(Math.abs(r.bytes / fs.statSync(f32).size - 0.5) < 0.01, `${r.bytes} vs ${fs.statSync(f32).size}`);
      const dtypes = new Set(readSafetensorsHeader(out).dtypes.values());
      assert.deepEqual([...dtypes].sort(), ['F16', 'I64']);
      const loaded = await loadWeights(out);
      const x = firstImages(referenceLogits('seed_logits.pth').input, getBackend().name === 'reference' ? 1 : 4);
      const want = logitsOf(seed, x);
      const got = logitsOf(loaded.stateDict, x);
      // each weight is off by at most 2^-11 of itself; through 20 layers the logits move by about 0.15% of the largest (measured)
      let ref = 0;
      for (const v of want) ref = Math.max(ref, Math.abs(v));
      expectClose(got, want, { atol: 5e-3 * ref, rtol: 0 }, 'F16 weights vs float32 weights, logits');
      // and it is not the same file: the weights did change (by rounding)
      assert.notDeepEqual(got, want);
    } finally {
      t.remove();
    }
  });

  test('--dtype f16 is refused for the formats that are not safetensors', async () => {
    await assert.rejects(runExport({ weights: interopFixture('tiny_zip.pth'), out: '/tmp/never.onnx', dtype: 'f16' }),
      /export: --dtype f16 is for safetensors only \(received --format onnx\)/);
  });
});
