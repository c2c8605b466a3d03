/**
 * Tests of src/data/loader.ts and split.ts: batch counts and drop_last, one permutation per epoch from
 * (seed, epoch), labels following indices, the worker thread giving the same batches bit for bit, limit, and
 * the deterministic validation split.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildBatchX } from '../../src/data/augment';
import { Batch, Loader, LoaderOptions } from '../../src/data/loader';
import { splitValidation } from '../../src/data/split';
import type { Split } from '../../src/data/types';
import { rgbPattern } from './make';

function makeSplit(n: number): Split {
  const images = new Uint8Array(n * 3072);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    images.set(rgbPattern(32, 32, i), i * 3072);
    labels[i] = (i * 3) % 10;
  }
  return { n, images, labels, names: Array.from({ length: n }, (_, i) => `img${i}`) };
}

const base: LoaderOptions = { batchSize: 4, shuffle: true, augment: { crop: true, flip: true }, seed: 1, dropLast: false };

async function collect(loader: Loader, epoch: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader.batches(epoch)) out.push(b);
  return out;
}

describe('Loader', () => {
  const split = makeSplit(10);

  test('batch count and sizes with and without drop_last', async () => {
    const keep = new Loader(split, base);
    assert.equal(keep.numBatches, 3);
    assert.deepEqual((await collect(keep, 0)).map((b) => b.n), [4, 4, 2]);
    const drop = new Loader(split, { ...base, dropLast: true });
    assert.equal(drop.numBatches, 2);
    assert.deepEqual((await collect(drop, 0)).map((b) => b.n), [4, 4]);
  });

  test('each epoch is a permutation from (seed, epoch); y and x follow the indices', async () => {
    const loader = new Loader(split, base);
    const e0 = await collect(loader, 0);
    const order0 = e0.flatMap((b) => [...b.indices]);
    assert.deepEqual([...order0].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const order1 = (await collect(loader, 1)).flatMap((b) => [...b.indices]);
    assert.notDeepEqual(order1, order0, 'a fresh permutation per epoch');
    const again = (await collect(new Loader(split, base), 0)).flatMap((b) => [...b.indices]);
    assert.deepEqual(again, order0, 'same (seed, epoch), same order');
    const other = (await collect(new Loader(split, { ...base, seed: 2 }), 0)).flatMap((b) => [...b.indices]);
    assert.notDeepEqual(other, order0, 'another seed, another order');
    for (const b of e0) {
      assert.deepEqual([...b.y], [...b.indices].map((i) => split.labels[i]));
      assert.deepEqual(b.x, buildBatchX(split.images, b.indices, 0, 1, { crop: true, flip: true }));
      assert.equal(b.x.length, b.n * 3 * 32 * 32);
    }
    const still = await collect(new Loader(split, { ...base, shuffle: false }), 3);
    assert.deepEqual(still.flatMap((b) => [...b.indices]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test('the worker thread gives the same batches, bit for bit, over several epochs', async () => {
    const big = makeSplit(300);
    const opts: LoaderOptions = { batchSize: 64, shuffle: true, augment: { crop: true, flip: true, cutout: 8 }, seed: 5, dropLast: false };
    const plain = new Loader(big, opts);
    const threaded = new Loader(big, { ...opts, worker: true });
    try {
      for (const epoch of [0, 1]) {
        const a = await collect(plain, epoch);
        const b = await collect(threaded, epoch);
        assert.equal(b.length, a.length);
        for (let k = 0; k < a.length; k++) {
          assert.deepEqual(b[k].indices, a[k].indices);
          assert.deepEqual(b[k].y, a[k].y);
          assert.deepEqual(b[k].x, a[k].x, `epoch ${epoch} batch ${k}`);
        }
      }
      // stopping early leaves nothing hanging; the next epoch still works
      for await (const b of threaded.batches(2)) {
        assert.equal(b.n, 64);
        break;
      }
      assert.equal((await collect(threaded, 3)).length, 5);
    } finally {
      await threaded.close();
    }
  });

  test('limit: a fixed subset of that size, the same every epoch', async () => {
    const big = makeSplit(50);
    const loader = new Loader(big, { ...base, limit: 12 });
    assert.equal(loader.size, 12);
    assert.equal(loader.numBatches, 3);
    const s0 = (await collect(loader, 0)).flatMap((b) => [...b.indices]).sort((a, b) => a - b);
    const s1 = (await collect(loader, 1)).flatMap((b) => [...b.indices]).sort((a, b) => a - b);
    assert.deepEqual(s1, s0);
    assert.equal(new Set(s0).size, 12);
    assert.ok(s0[11] > 11, 'not simply the first 12 (a class-sorted dataset would give one class)');
    assert.throws(() => new Loader(big, { ...base, batchSize: 0 }), /Loader: expected batchSize a positive integer, received 0/);
  });
});

describe('splitValidation', () => {
  test('deterministic, disjoint, complete, with images, labels and names carried along', () => {
    const s = makeSplit(40);
    const a = splitValidation(s, 10, 3);
    const b = splitValidation(s, 10, 3);
    assert.equal(a.val.n, 10);
    assert.equal(a.train.n, 30);
    assert.deepEqual(a.val.names, b.val.names);
    const idx = (x: Split): number[] => x.names!.map((n) => Number(n.slice(3)));
    const all = [...idx(a.train), ...idx(a.val)].sort((p, q) => p - q);
    assert.deepEqual(all, Array.from({ length: 40 }, (_, i) => i));
    for (const part of [a.train, a.val]) {
      idx(part).forEach((orig, k) => {
        assert.equal(part.labels[k], s.labels[orig]);
        assert.deepEqual(part.images.subarray(k * 3072, (k + 1) * 3072), s.images.subarray(orig * 3072, (orig + 1) * 3072));
      });
    }
    assert.notDeepEqual(splitValidation(s, 10, 4).val.names, a.val.names, 'another seed, another split');
    assert.throws(() => splitValidation(s, 40, 1), /splitValidation: expected 0 < n < 40 \(the split's size\), received 40/);
  });
});
