/**
 * The trainer's per-epoch evaluation through the folded inference graph (evaluateFused, src/train/evaluate.ts)
 * against evaluate(), which runs the training graph in eval mode: the same confusion matrix and accuracy, with and
 * without flip TTA, and the losses within 1e-4 relative, without calling the model's forward at all. On the reference
 * backend a width-4 ResNet-18 whose batch norms have non-trivial statistics and affine parameters (written here,
 * seeded), on the native one (where built) the golden fixture's full-width weights; 12 images of seeded noise, in
 * batches of 5 (the last one short).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backendByName, nativeUnavailableReason } from '../../src/backend';
import type { Backend } from '../../src/backend/backend';
import { Loader } from '../../src/data/loader';
import type { Split } from '../../src/data/types';
import { buildModel } from '../../src/models';
import type { ResNet } from '../../src/models/resnet';
import { evaluate, evaluateFused } from '../../src/train/evaluate';
import { fixtureStateDict } from '../helpers/fixture-values';

function noiseSplit(n: number, classes: number, seed: number): Split {
  const images = new Uint8Array(n * 32 * 32 * 3);
  let s = seed;
  for (let i = 0; i < images.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    images[i] = s >>> 24;
  }
  return { n, images, labels: Uint8Array.from({ length: n }, (_, i) => i % classes) };
}

/** Every batch norm of `m` given running statistics and affine parameters away from 0/1 (seeded). */
function perturbNorms(m: ResNet): void {
  const sd = m.stateDict();
  let s = 99;
  const rnd = (): number => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (const [key, t] of sd) {
    if (t.dtype === 'int64') continue;
    const d = t.data as Float32Array;
    if (key.endsWith('running_var')) for (let i = 0; i < d.length; i++) d[i] = 0.5 + rnd();
    else if (key.endsWith('running_mean') || key.endsWith('.bias')) for (let i = 0; i < d.length; i++) d[i] = rnd() - 0.5;
    else if (/\.(1|4)\.weight$/.test(key) || key.endsWith('shortcut.1.weight')) for (let i = 0; i < d.length; i++) d[i] = 0.5 + rnd();
  }
  m.loadStateDict(sd);
}

async function compare(be: Backend, model: ResNet, classes: number): Promise<void> {
  const loader = new Loader(noiseSplit(12, classes, 4321), { batchSize: 5, shuffle: false, seed: 0, dropLast: false, augment: { crop: false, flip: false } });
  const expected = await evaluate(model, loader, classes, { tta: 'flip' });
  let forwards = 0;
  const forward = model.forward.bind(model);
  model.forward = (x) => {
    forwards++;
    return forward(x);
  };
  const got = await evaluateFused(model, loader, classes, { tta: 'flip' });
  assert.equal(forwards, 0, 'the training graph did not run');
  assert.equal(model.training, true, 'the model is still in training mode');
  assert.equal(got.n, 12);
  assert.deepEqual(got.confusion, expected.confusion);
  assert.equal(got.acc, expected.acc);
  assert.equal(got.tta?.acc, expected.tta?.acc);
  for (const [a, b, what] of [[got.loss, expected.loss, 'loss'], [got.tta?.loss, expected.tta?.loss, 'tta loss']] as const) {
    assert.ok(Math.abs((a as number) - (b as number)) <= 1e-4 * Math.abs(b as number), `${what}: fused ${a}, eval-mode ${b} (${be.name})`);
  }
  const plain = await evaluateFused(model, loader, classes);
  assert.deepEqual([plain.loss, plain.acc, plain.tta], [got.loss, got.acc, undefined]);
}

test('reference backend: evaluateFused gives evaluate()\'s figures without running the training graph', async () => {
  const ref = backendByName('reference');
  const model = buildModel({ arch: 'resnet18', width: 4, numClasses: 3, inputSize: 32 }, { seed: 5, backend: ref });
  perturbNorms(model);
  try {
    await compare(ref, model, 3);
  } finally {
    model.dispose();
  }
});

const native = nativeUnavailableReason();
const skipNative = native && process.env.RESNET_REQUIRE_NATIVE !== '1' ? `native backend unavailable: ${native}` : false;

test('native backend, fp32: evaluateFused gives evaluate()\'s figures on the golden weights', { skip: skipNative }, async () => {
  const be = backendByName('native');
  const model = buildModel({ arch: 'resnet18', width: 64, numClasses: 10, inputSize: 32 }, { seed: 0, backend: be });
  model.loadStateDict(fixtureStateDict());
  try {
    await compare(be, model, 10);
  } finally {
    model.dispose();
  }
});
