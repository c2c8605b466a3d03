/**
 * `--whiten-init`: the patch covariance, the Jacobi eigen-decomposition, the whitening filters, the stem they are
 * written into, and the trainer starting from them. Expected values are written out or come from definitions
 * (A v = λ v, the covariance of whitened patches is ~I), not from the code under test.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { backendByName } from '../../src/backend';
import { buildModel, SEED_SPEC } from '../../src/models';
import { Rng } from '../../src/util/rng';
import { openDataset } from '../../src/data';
import { buildBatchX } from '../../src/data/augment';
import { configDifferences, validateConfig } from '../../src/train/config';
import { STEM_WEIGHT, patchCovariance, symmetricEigen, whitenStem, whiteningFilters } from '../../src/train/whiten';
import { latestCheckpoint, tinyConfig, trainerTempRoot, trainQuiet } from './trainer-fixtures/setup';

const fx = trainerTempRoot('whiten-init');

/** n images of c x s x s whose channels are correlated: channel 1 = channel 0 + noise, channel 2 independent. */
function correlatedImages(n: number, c: number, s: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const x = new Float32Array(n * c * s * s);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < s * s; p++) {
      const a = rng.normal();
      x[(i * c) * s * s + p] = a;
      if (c > 1) x[(i * c + 1) * s * s + p] = a + 0.3 * rng.normal();
      for (let ci = 2; ci < c; ci++) x[(i * c + ci) * s * s + p] = 2 * rng.normal() + 1;
    }
  }
  return x;
}

describe('whitening initialisation', () => {
  test('patchCovariance of a 1x1 patch is the channels\' sample covariance', () => {
    // two 1x2 "images" of 2 channels: channel values (1, 3), (2, 6) → x = [1,3] per image... written out
    const x = Float32Array.from([1, 2, 10, 20, /* image 2 */ 3, 4, 30, 40]);
    const cov = patchCovariance(x, 2, 2, 1, 2, 1);
    // samples (1,10) (2,20) (3,30) (4,40): var of (1,2,3,4) = 5/3, cov = 50/3, var of (10..40) = 500/3
    const want = [5 / 3, 50 / 3, 50 / 3, 500 / 3];
    cov.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-9, `${i}: ${v} vs ${want[i]}`));
  });

  test('symmetricEigen: [[2,1],[1,2]] has eigenvalues 3 and 1 with vectors ±(1,1)/√2 and ±(1,-1)/√2', () => {
    const { values, vectors } = symmetricEigen(Float64Array.from([2, 1, 1, 2]), 2);
    assert.ok(Math.abs(values[0] - 3) < 1e-12 && Math.abs(values[1] - 1) < 1e-12, `${values}`);
    assert.ok(Math.abs(Math.abs(vectors[0]) - Math.SQRT1_2) < 1e-12 && Math.abs(vectors[0] - vectors[1]) < 1e-12);
    assert.ok(Math.abs(Math.abs(vectors[2]) - Math.SQRT1_2) < 1e-12 && Math.abs(vectors[2] + vectors[3]) < 1e-12);
  });

  test('symmetricEigen of a random 27x27 covariance: A v = λ v, orthonormal vectors, descending values', () => {
    const d = 27;
    const x = correlatedImages(40, 3, 6, 1);
    const a = patchCovariance(x, 40, 3, 6, 6, 3);
    const { values, vectors } = symmetricEigen(a, d);
    for (let i = 1; i < d; i++) assert.ok(values[i] <= values[i - 1]);
    for (let i = 0; i < d; i++) {
      for (let r = 0; r < d; r++) {
        let av = 0;
        for (let j = 0; j < d; j++) av += a[r * d + j] * vectors[i * d + j];
        assert.ok(Math.abs(av - values[i] * vectors[i * d + r]) < 1e-9 * values[0], `A v_${i} row ${r}`);
      }
      for (let k = 0; k < d; k++) {
        let dot = 0;
        for (let j = 0; j < d; j++) dot += vectors[i * d + j] * vectors[k * d + j];
        assert.ok(Math.abs(dot - (i === k ? 1 : 0)) < 1e-10, `v_${i}·v_${k} = ${dot}`);
      }
    }
  });

  test('filtered patches have about the identity covariance', () => {
    const n = 60, c = 3, s = 8, k = 3, d = c * k * k;
    const x = correlatedImages(n, c, s, 2);
    const cov = patchCovariance(x, n, c, s, s, k);
    const f = whiteningFilters(cov, d, 1e-9);
    // covariance of f·p = F C Fᵀ
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) {
        let v = 0;
        for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) v += f[i * d + a] * cov[a * d + b] * f[j * d + b];
        assert.ok(Math.abs(v - (i === j ? 1 : 0)) < 1e-5, `(${i},${j}) = ${v}`);
      }
    }
  });

  test('the stem convolution (PyTorch weight layout [out][in][ky][kx]) of whitened images gives decorrelated outputs', () => {
    // rows correlated along x only, so that a transposed patch order would not whiten
    const n = 30, s = 12, c = 3;
    const rng = new Rng(4);
    const x = new Float32Array(n * c * s * s);
    for (let i = 0; i < n * c; i++) {
      for (let y = 0; y < s; y++) {
        let prev = rng.normal();
        for (let xx = 0; xx < s; xx++) {
          prev = 0.9 * prev + 0.45 * rng.normal();
          x[(i * s + y) * s + xx] = prev + (i % c === 1 ? x[((i - 1) * s + y) * s + xx] : 0);
        }
      }
    }
    const model = buildModel({ ...SEED_SPEC, width: 64 }, { seed: 1, backend: backendByName('reference') });
    whitenStem(model, x, n, 1e-9);
    const w = model.stateDict().get(STEM_WEIGHT)!.data as Float32Array;
    const out: number[][] = Array.from({ length: 27 }, () => []);
    for (let i = 0; i < n; i++) {
      for (let y = 0; y + 3 <= s; y++) {
        for (let xx = 0; xx + 3 <= s; xx++) {
          for (let o = 0; o < 27; o++) {
            let v = 0;
            for (let ci = 0; ci < c; ci++) for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) {
              v += w[((o * c + ci) * 3 + ky) * 3 + kx] * x[((i * c + ci) * s + y + ky) * s + xx + kx];
            }
            out[o].push(v);
          }
        }
      }
    }
    const mean = out.map((a) => a.reduce((p, q) => p + q, 0) / a.length);
    for (let a = 0; a < 27; a++) {
      for (let b = 0; b < 27; b++) {
        let v = 0;
        for (let t = 0; t < out[a].length; t++) v += (out[a][t] - mean[a]) * (out[b][t] - mean[b]);
        v /= out[a].length - 1;
        assert.ok(Math.abs(v - (a === b ? 1 : 0)) < 1e-3, `(${a},${b}) = ${v}`);
      }
    }
  });

  test('whitenStem writes filters 0..26 and their negatives 27..53 into conv1.0.weight; 54..63 and every other tensor keep their values', () => {
    const be = backendByName('reference');
    const spec = { ...SEED_SPEC, width: 64 };
    const plain = buildModel(spec, { seed: 5, backend: be });
    const model = buildModel(spec, { seed: 5, backend: be });
    const n = 20;
    const x = correlatedImages(n, 3, 32, 3);
    assert.equal(whitenStem(model, x, n), 54);
    const f = whiteningFilters(patchCovariance(x, n, 3, 32, 32, 3), 27);
    const a = plain.stateDict();
    const b = model.stateDict();
    const w = b.get(STEM_WEIGHT)!.data as Float32Array;
    for (let o = 0; o < 27; o++) {
      for (let j = 0; j < 27; j++) {
        assert.ok(Math.abs(w[o * 27 + j] - f[o * 27 + j]) <= 1e-6 * Math.abs(f[o * 27 + j]) + 1e-7);
        assert.equal(w[(o + 27) * 27 + j], -w[o * 27 + j]);
      }
    }
    assert.deepEqual([...w.subarray(54 * 27)], [...a.get(STEM_WEIGHT)!.data.subarray(54 * 27)]);
    for (const [k, t] of b) if (k !== STEM_WEIGHT) assert.deepEqual(t.data, a.get(k)!.data, `${k} untouched`);
  });

  test('the trainer starts from it: after one epoch at a tiny lr the stem holds the whitening filters of its training images', async () => {
    const stem = async (whitenInit: number): Promise<Float32Array | Float64Array> => {
      const out = path.join(fx.root, `w${whitenInit}`);
      await trainQuiet({ config: tinyConfig({ epochs: 1, lr: 1e-12, whitenInit }), data: fx.data, out, worker: false });
      return (await latestCheckpoint(out)).model.get(STEM_WEIGHT)!.data as Float32Array;
    };
    // the expected filters, from the training images as the data path decodes and normalises them (tinyConfig has no
    // val split: all 24 training images; whiten-init 50 asks for more and takes them all)
    const train = (await openDataset(fx.data)).train;
    const x = buildBatchX(train.images, Int32Array.from({ length: train.n }, (_, i) => i), 0, 0, null);
    const f = whiteningFilters(patchCovariance(x, train.n, 3, 32, 32, 3), 27);
    const on = await stem(50);
    const off = await stem(0);
    // width 4: the stem's 4 filters are the 4 strongest directions (no room for their negatives)
    for (let j = 0; j < 4 * 27; j++) assert.ok(Math.abs(on[j] - f[j]) <= 1e-5 * Math.abs(f[j]) + 1e-6, `${j}: ${on[j]} vs ${f[j]}`);
    assert.ok(off.some((v, j) => Math.abs(v - f[j]) > 1e-3), 'without the option the stem is random');
  });

  test('a number >= 0; a checkpoint from before the field resumes without it', () => {
    assert.throws(() => validateConfig(tinyConfig({ whitenInit: -1 })), /--whiten-init must be a number >= 0, received -1/);
    const cfg = tinyConfig();
    const { whitenInit: _w, ...before } = cfg;
    assert.deepEqual(configDifferences(before, cfg), []);
    assert.deepEqual(configDifferences(before, { ...cfg, whitenInit: 5000 }), ['--whiten-init: 0 → 5000']);
  });
});
