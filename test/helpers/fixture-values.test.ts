/**
 * Tests of the fixture value generators against the committed golden file: the TypeScript and Python
 * (scripts/fixtures/make_golden.py) generators must agree bit for bit, and the key/shape list must be the seed's.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readSafetensorsFile } from '../../src/interop/safetensors';
import { HostTensor, hostNumel } from '../../src/tensor/host';
import { hashSeed } from '../../src/util/rng';
import { expectClose, relErrorToMax } from './close';
import {
  fixtureInput,
  fixtureInputSpec,
  fixtureKeyShapes,
  fixtureSampleIndices,
  fixtureStateDict,
  fixtureTargets,
  fixtureUniform,
  goldenFixturePath,
} from './fixture-values';

const golden = readSafetensorsFile(goldenFixturePath());

function get(name: string): HostTensor {
  const t = golden.tensors.get(name);
  assert.ok(t, `golden fixture: expected a tensor '${name}', found none`);
  return t;
}

function assertSameBits(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) assert.fail(`${what}[${i}]: ${actual[i]} !== ${expected[i]} (Python)`);
  }
}

describe('fixtureUniform', () => {
  test('equals the Python generator bit for bit (check.u)', () => {
    const u = get('check.u');
    assert.equal(u.dtype, 'float64');
    assert.deepEqual(u.shape, [64]);
    assertSameBits(fixtureUniform(12345, 64), u.data as Float64Array, 'fixtureUniform(12345, 64)');
  });

  test('is hashSeed scaled to [-1, 1)', () => {
    const u = fixtureUniform(7, 1000);
    assert.equal(u[3], (hashSeed(7, 3) / 2 ** 32) * 2 - 1);
    assert.ok(u.every((v) => v >= -1 && v < 1));
    const mean = u.reduce((a, b) => a + b, 0) / u.length;
    assert.ok(Math.abs(mean) < 0.1, `mean of 1000 draws ${mean} should be near 0`);
  });
});

describe('fixtureKeyShapes', () => {
  const keys = fixtureKeyShapes();
  const params = keys.filter((k) => k.parameter);

  test("has the seed's 62 parameters (11,173,962 values) and 20 BatchNorms' buffers", () => {
    assert.equal(params.length, 62);
    assert.equal(params.reduce((a, k) => a + hostNumel(k.shape), 0), 11_173_962);
    assert.equal(keys.length, 62 + 20 * 3);
    assert.equal(keys.filter((k) => k.kind === 'bn.num_batches_tracked').length, 20);
  });

  test("matches the seed's state_dict order and names", () => {
    assert.deepEqual(
      keys.slice(0, 12).map((k) => k.key),
      [
        'conv1.0.weight', 'conv1.1.weight', 'conv1.1.bias', 'conv1.1.running_mean', 'conv1.1.running_var',
        'conv1.1.num_batches_tracked', 'layer1.0.left.0.weight', 'layer1.0.left.1.weight', 'layer1.0.left.1.bias',
        'layer1.0.left.1.running_mean', 'layer1.0.left.1.running_var', 'layer1.0.left.1.num_batches_tracked',
      ],
    );
    const shortcuts = keys.filter((k) => k.key.endsWith('shortcut.0.weight'));
    assert.deepEqual(shortcuts.map((k) => [k.key, k.shape]), [
      ['layer2.0.shortcut.0.weight', [128, 64, 1, 1]],
      ['layer3.0.shortcut.0.weight', [256, 128, 1, 1]],
      ['layer4.0.shortcut.0.weight', [512, 256, 1, 1]],
    ]);
    assert.deepEqual(keys.slice(-2).map((k) => [k.key, k.shape]), [['fc.weight', [10, 512]], ['fc.bias', [10]]]);
    assert.deepEqual(fixtureKeyShapes(100).slice(-1)[0].shape, [100]);
  });

  test('agrees with the keys and shapes in the golden fixture', () => {
    for (const k of keys) {
      if (k.parameter) {
        assert.deepEqual(get(`grad.${k.key}.sample`).shape, [fixtureSampleIndices(hostNumel(k.shape)).length], k.key);
        assert.deepEqual(get(`grad.${k.key}.stats`).shape, [3], k.key);
      } else {
        assert.deepEqual(get(`bn_after.${k.key}`).shape, k.shape, k.key);
      }
    }
    const inFixture = [...golden.tensors.keys()].filter((n) => n.startsWith('grad.') && n.endsWith('.sample'));
    assert.equal(inFixture.length, params.length);
  });
});

describe('fixtureStateDict', () => {
  const sd = fixtureStateDict();

  test('equals the weights Python generated, bit for bit, at the sampled indices', () => {
    assert.deepEqual([...sd.keys()], fixtureKeyShapes().map((k) => k.key));
    for (const [key, t] of sd) {
      if (t.dtype === 'int64') {
        assert.deepEqual([...t.data], [0n], key);
        continue;
      }
      assert.equal(t.dtype, 'float32', key);
      const data = t.data as Float32Array;
      const idx = fixtureSampleIndices(data.length);
      assertSameBits(idx.map((i) => data[i]), get(`init.${key}.sample`).data as Float32Array, `init ${key}`);
    }
  });

  test('follows the rule (fan-in scaling, BatchNorm ranges)', () => {
    const conv = sd.get('layer2.0.left.0.weight')!.data as Float32Array;
    const u = fixtureUniform(fixtureKeyShapes().findIndex((k) => k.key === 'layer2.0.left.0.weight') + 1, 5);
    expectClose(conv.subarray(0, 5), u.map((v) => v / Math.sqrt(64 * 9)), { atol: 0, rtol: 1e-7 });
    const bias = sd.get('fc.bias')!.data as Float32Array;
    assert.ok(bias.every((v) => Math.abs(v) <= 1 / Math.sqrt(512)));
    const varData = sd.get('layer4.1.left.4.running_var')!.data as Float32Array;
    assert.ok(varData.every((v) => v >= 1 && v <= 1.5));
  });

  test('the batch and labels equal the fixture input and target', () => {
    const spec = fixtureInputSpec();
    assert.deepEqual([...get('input_stream').data], [BigInt(spec.stream)]);
    assert.ok(spec.batch >= 1, `batch ${spec.batch}`);
    const x = fixtureInput();
    assert.deepEqual(x.shape, [spec.batch, 3, 32, 32]);
    assert.deepEqual(get('input').shape, x.shape);
    assertSameBits(x.data as Float32Array, get('input').data as Float32Array, 'input');
    assert.deepEqual(get('target').shape, [spec.batch]);
    assert.deepEqual([...get('target').data], [...fixtureTargets().data]);
    assert.deepEqual([...fixtureTargets(8).data], [3n, 0n, 7n, 4n, 1n, 8n, 5n, 2n]);
  });

  test('fixtureInput draws 2 * fixtureUniform(stream) as float32 for any stream and batch', () => {
    const x = fixtureInput({ stream: 100000, batch: 2 });
    assert.deepEqual(x.shape, [2, 3, 32, 32]);
    const u = fixtureUniform(100000, 2 * 3 * 32 * 32);
    assertSameBits(x.data as Float32Array, Float32Array.from(u, (v) => 2 * v), 'fixtureInput(100000, 2)');
  });
});

describe('the float64 results', () => {
  test('every float32 result has a float64 twin (f64.<name>) of the same shape', () => {
    const shared = ['input', 'input_stream', 'target', 'check.u'];
    const results = [...golden.tensors.keys()].filter((n) => !n.startsWith('f64.') && !n.startsWith('init.') && !shared.includes(n));
    // train 3 + grad 2·62 + bn_after 3·20 + (losses + 2·62 + 3·20) for sgd3 and nest3 + eval 3
    assert.equal(results.length, 3 + 124 + 60 + 2 * 185 + 3);
    for (const name of results) {
      const t32 = get(name);
      const t64 = get(`f64.${name}`);
      assert.deepEqual(t64.shape, t32.shape, name);
      assert.equal(t64.dtype, t32.dtype === 'int64' ? 'int64' : 'float64', name);
    }
    const f64Names = [...golden.tensors.keys()].filter((n) => n.startsWith('f64.'));
    assert.equal(f64Names.length, results.length);
  });

  test('float32 and float64 gradients and SGD weights agree to 2e-5 of their max (the batch was chosen so)', () => {
    const names = [...golden.tensors.keys()].filter((n) => /^(grad|sgd3|nest3)\..*\.sample$/.test(n));
    assert.equal(names.length, 3 * 62);
    for (const name of names) {
      const err = relErrorToMax(get(name).data as Float32Array, get(`f64.${name}`).data as Float64Array);
      assert.ok(err <= 2e-5, `${name}: float32 vs float64 ${err.toExponential(2)}`);
    }
  });
});

test('fixtureSampleIndices keeps small tensors whole and samples 256 of large ones', () => {
  assert.deepEqual(fixtureSampleIndices(3), [0, 1, 2]);
  assert.equal(fixtureSampleIndices(4096).length, 4096);
  const idx = fixtureSampleIndices(36864);
  assert.equal(idx.length, 256);
  assert.equal(idx[1], 144);
  assert.equal(idx[255], Math.floor((255 * 36864) / 256));
});
