/**
 * Test-time augmentation through the real classifier (loadClassifier with `tta`, an untrained ResNet-18 written as
 * safetensors): a batch's probabilities are the mean over views made by hand (test/predict/tta-views.ts) of the
 * plain classifier's softmax on each view, for classifyBatch, classifyInput and classifyBytes; the logits reported
 * are the untouched view's; a left-right symmetric input gives the same answer with and without flip TTA (and an
 * asymmetric one does not); ModelInfo says which TTA is in use; an unknown mode is refused by name.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { loadClassifier, type Classifier } from '../../src/predict/classifier';
import { preprocessForModel } from '../../src/data';
import type { TtaMode } from '../../src/data/tta';
import { maxAbsDiff } from '../helpers/close';
import { ImageSet, tempDir, writeImages, writeTestWeights } from './fixtures';
import { meanRows, mirror, viewsOf } from './tta-views';

const PER = 3 * 32 * 32;
let dir = '';
let weights = '';
let images: ImageSet;
let plain: Classifier;
/** three different preprocessed images, packed [3,3,32,32] */
let batch: Float32Array;

before(async () => {
  dir = tempDir('classifier-tta');
  weights = writeTestWeights(dir, 7);
  images = await writeImages(dir);
  plain = await loadClassifier(weights);
  const xs = await Promise.all([images.good.png, images.good.webp, images.good.bmp].map((f) => preprocessForModel(fs.readFileSync(f))));
  batch = new Float32Array(3 * PER);
  xs.forEach((x, i) => batch.set(x, i * PER));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The mean over hand-made views of the plain classifier's probabilities, each view run as a batch of n like the input. */
function expectedProbs(x: Float32Array, n: number, mode: TtaMode): number[][] {
  const perImage = Array.from({ length: n }, (_, i) => viewsOf(x.subarray(i * PER, (i + 1) * PER), mode));
  const views = perImage[0].map((_, v) => {
    const packed = new Float32Array(n * PER);
    perImage.forEach((vs, i) => packed.set(vs[v], i * PER));
    return plain.classifyBatch(packed, n).map((p) => p.probs);
  });
  return Array.from({ length: n }, (_, i) => meanRows(views.map((v) => v[i])));
}

for (const mode of ['flip', 'flip-shift'] as const) {
  test(`tta ${mode}: a batch's probabilities are the mean of the views', the logits the untouched view's`, async () => {
    const c = await loadClassifier(weights, { tta: mode });
    assert.equal(c.info.tta, mode);
    const got = c.classifyBatch(batch, 3);
    const want = expectedProbs(batch, 3, mode);
    const plainPreds = plain.classifyBatch(batch, 3);
    for (let i = 0; i < 3; i++) {
      assert.ok(maxAbsDiff(got[i].probs, want[i]) <= 1e-6, `image ${i}: ${maxAbsDiff(got[i].probs, want[i])}`);
      assert.equal(got[i].confidence, Math.max(...got[i].probs));
      assert.equal(got[i].index, got[i].probs.indexOf(got[i].confidence));
      assert.deepEqual(got[i].logits, plainPreds[i].logits);
      // the views change the answer: otherwise this test could not tell TTA from none
      assert.ok(maxAbsDiff(got[i].probs, plainPreds[i].probs) > 1e-4, `image ${i}: TTA made no difference`);
    }
    // one image alone (batch 1), from an array and from the file's bytes
    const one = batch.subarray(0, PER);
    const wantOne = expectedProbs(one, 1, mode)[0];
    assert.ok(maxAbsDiff(c.classifyInput(one).probs, wantOne) <= 1e-6);
    const fromBytes = await c.classifyBytes(fs.readFileSync(images.good.png));
    assert.ok(maxAbsDiff(fromBytes.probs, wantOne) <= 1e-6);
  });
}

test('a left-right symmetric input: the same answer with and without flip TTA', async () => {
  const flip = await loadClassifier(weights, { tta: 'flip' });
  const x = batch.subarray(0, PER);
  // the left half of the image and its mirror image on the right
  const sym = Float32Array.from(x);
  const m = mirror(x);
  for (let row = 0; row < 3 * 32; row++) for (let col = 16; col < 32; col++) sym[row * 32 + col] = m[row * 32 + col];
  assert.deepEqual(Array.from(mirror(sym)), Array.from(sym));
  const a = plain.classifyInput(sym);
  const b = flip.classifyInput(sym);
  assert.equal(b.index, a.index);
  assert.ok(maxAbsDiff(b.probs, a.probs) <= 1e-6, `${maxAbsDiff(b.probs, a.probs)}`);
  // the original, asymmetric image: flip TTA changes its probabilities
  assert.ok(maxAbsDiff(flip.classifyInput(x).probs, plain.classifyInput(x).probs) > 1e-4);
});

test('ModelInfo.tta is off by default; an unknown mode is refused by name', async () => {
  assert.equal(plain.info.tta, 'off');
  await assert.rejects(loadClassifier(weights, { tta: 'rotate' as TtaMode }), /--tta must be one of off, flip, flip-shift, received rotate/);
});
