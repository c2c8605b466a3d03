/**
 * evaluate() with test-time augmentation (src/train/evaluate.ts over src/data/tta.ts): with flip, the accuracy and
 * the loss equal those computed here by hand from the model's logits on each batch and on its mirror image, written
 * out index by index (out[n,c,h,w] = x[n,c,h,31−w]), through a softmax in float64; without TTA there is no `tta`
 * result, and asking for one leaves the plain figures as they were. ResNet-18 at width 4 on the reference backend,
 * 7 random images in batches of 3 (the last one short).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backendByName } from '../../src/backend';
import { Loader } from '../../src/data/loader';
import type { Split } from '../../src/data/types';
import { buildModel } from '../../src/models';
import { Tensor, noGrad, tidy } from '../../src/tensor';
import { evaluate } from '../../src/train/evaluate';

const ref = backendByName('reference');
const K = 3;

/** 7 images of seeded noise, labels 0, 1, 2, 0, 1, 2, 0. */
function noiseSplit(): Split {
  const n = 7;
  const images = new Uint8Array(n * 32 * 32 * 3);
  let s = 12345;
  for (let i = 0; i < images.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    images[i] = s >>> 24;
  }
  return { n, images, labels: Uint8Array.from({ length: n }, (_, i) => i % K) };
}

function mirror(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let row = 0; row < x.length / 32; row++) for (let w = 0; w < 32; w++) out[row * 32 + w] = x[row * 32 + 31 - w];
  return out;
}

function softmax64(logits: ArrayLike<number>, i: number): number[] {
  const row = Array.from({ length: K }, (_, j) => logits[i * K + j]);
  const max = Math.max(...row);
  const e = row.map((v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

test('flip TTA: the accuracy and −log of the mean probability equal the mean of the two views\' softmax by hand', async () => {
  const model = buildModel({ arch: 'resnet18', width: 4, numClasses: K, inputSize: 32 }, { seed: 3, backend: ref });
  const loader = new Loader(noiseSplit(), { batchSize: 3, shuffle: false, seed: 0, dropLast: false, augment: { crop: false, flip: false } });
  model.eval();
  const logitsOf = (x: Float32Array, n: number) => noGrad(() => tidy(() => model.forward(Tensor.fromArray(x, [n, 3, 32, 32], ref)).toArray()));
  let correct = 0;
  let lossSum = 0;
  let flipDiffers = false;
  for await (const b of loader.batches(0)) {
    const plain = logitsOf(b.x, b.n);
    const flipped = logitsOf(mirror(b.x), b.n);
    for (let i = 0; i < b.n; i++) {
      const p0 = softmax64(plain, i);
      const p1 = softmax64(flipped, i);
      const mean = p0.map((v, j) => (v + p1[j]) / 2);
      if (mean.indexOf(Math.max(...mean)) === b.y[i]) correct++;
      lossSum -= Math.log(mean[b.y[i]]);
      if (p0.some((v, j) => Math.abs(v - p1[j]) > 1e-4)) flipDiffers = true;
    }
  }
  assert.ok(flipDiffers, 'noise is not left-right symmetric: the two views must differ for this test to say anything');
  model.train();

  const r = await evaluate(model, loader, K, { tta: 'flip' });
  assert.equal(r.n, 7);
  assert.equal(r.tta?.mode, 'flip');
  assert.equal(r.tta?.acc, correct / 7);
  assert.ok(Math.abs((r.tta?.loss as number) - lossSum / 7) < 1e-6, `tta loss ${r.tta?.loss}, by hand ${lossSum / 7}`);
  assert.equal(model.training, true, 'the model is back in training mode');

  const off = await evaluate(model, loader, K);
  assert.equal(off.tta, undefined);
  assert.deepEqual(await evaluate(model, loader, K, { tta: 'off' }), off);
  assert.deepEqual([r.loss, r.acc, r.confusion], [off.loss, off.acc, off.confusion], 'the plain figures do not depend on the TTA');
  const six = await evaluate(model, loader, K, { tta: 'flip-shift' });
  assert.equal(six.tta?.mode, 'flip-shift');
  assert.notEqual(six.tta?.loss, r.tta?.loss, 'six views are not the two of flip');
  model.dispose();
});
