/**
 * Tests of loadClassifier: real weights (an untrained ResNet-18 written as safetensors) load strictly, and a
 * prediction is exactly the folded inference graph of those weights on preprocessForModel's input (which in turn
 * equals the eval-mode forward pass within 1e-4: checked here too, and in test/models/inference.test.ts).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadClassifier } from '../../src/predict/classifier';
import { preprocessForModel } from '../../src/data';
import { resnet18 } from '../../src/models/resnet';
import { Tensor, noGrad, tidy } from '../../src/tensor';
import { writeSafetensorsFile } from '../../src/interop/safetensors';
import { softmax } from '../../src/predict/prediction';
import { InferenceGraph } from '../../src/models/inference';
import { relErrorToMax } from '../helpers/close';
import { ImageSet, tempDir, writeImages, writeTestWeights } from './fixtures';

let dir = '';
let weights = '';
let images: ImageSet;

before(async () => {
  dir = tempDir('classifier');
  weights = writeTestWeights(dir, 7);
  images = await writeImages(dir);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('a prediction is the inference graph of the weights on the preprocessed image (the eval-mode forward pass)', async () => {
  const c = await loadClassifier(weights);
  assert.equal(c.info.arch, 'resnet18');
  assert.equal(c.info.numClasses, 10);
  assert.equal(c.info.weights.format, 'safetensors');
  assert.equal(c.info.classes[3].zh, '猫');
  const bytes = fs.readFileSync(images.good.png);
  const p = await c.classifyBytes(bytes);

  // the same weights, built directly (same seed) rather than loaded from the file
  const model = resnet18({ seed: 7 });
  model.eval();
  const x = await preprocessForModel(bytes);
  const graph = InferenceGraph.fromStateDict(model.stateDict(), model.backend);
  const logits = graph.forward(x, [1, 3, 32, 32]);
  graph.dispose();
  assert.deepEqual(p.logits, Array.from(logits));
  const evalForward = tidy(() => noGrad(() => model.forward(Tensor.fromArray(x, [1, 3, 32, 32])).toArray()));
  assert.ok(relErrorToMax(p.logits, evalForward) <= 1e-4, `against the eval-mode forward: ${relErrorToMax(p.logits, evalForward)}`);
  assert.deepEqual(p.probs, softmax(logits));
  assert.equal(p.confidence, Math.max(...p.probs));
  assert.equal(p.probs.indexOf(p.confidence), p.index);
});

test('weights that are not a ResNet-18 are refused with the reason', async () => {
  const bad = path.join(dir, 'not-resnet.safetensors');
  writeSafetensorsFile(bad, new Map([['w', { dtype: 'float32', shape: [2], data: new Float32Array(2) }]]));
  await assert.rejects(loadClassifier(bad), /expected a ResNet-18 state dict with fc\.weight.*received keys w/);
  const sd = resnet18().stateDict();
  sd.delete('layer1.0.left.0.weight');
  const partial = path.join(dir, 'partial.safetensors');
  writeSafetensorsFile(partial, sd);
  await assert.rejects(loadClassifier(partial), /layer1\.0\.left\.0\.weight/);
  await assert.rejects(loadClassifier(path.join(dir, 'missing.ckpt')));
});
