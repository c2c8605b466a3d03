/**
 * `resnet eval`'s evaluation through the folded inference graph (src/predict/evaluation.ts) against the trainer's
 * evaluation of the same weights with the training graph in eval mode (src/train/evaluate.ts), on a tiny generated
 * ImageFolder: the same confusion matrix and accuracy, the loss within 1e-4 relative in fp32 (both backends), and
 * within bf16's tolerance under bf16. The weights: a ResNet-18 at width 4 trained here for 2 epochs (its predictions
 * vary by image, so the confusion matrix says something), and untrained ones with random batch-norm statistics and
 * affine parameters (folding them is far from the identity it is for an untrained model).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { backendByName, nativeUnavailableReason } from '../../src/backend';
import type { Backend } from '../../src/backend/backend';
import { openDataset, Loader, type Split } from '../../src/data';
import { InferenceGraph } from '../../src/models/inference';
import { resnet18 } from '../../src/models/resnet';
import type { StateDict } from '../../src/tensor/host';
import { evaluate } from '../../src/train/evaluate';
import { evaluateModel } from '../../src/predict/evaluation';
import { Rng } from '../../src/util/rng';
import { loadWeights } from '../../src/interop/weights';
import { removeDir, tempDir } from '../data/make';
import { makeDataset, tinyConfig, trainQuiet } from '../train/trainer-fixtures/setup';

const TEST_PER_CLASS = [5, 6, 7];

/** A width-4, 3-class ResNet-18's weights with batch-norm running statistics, scales and shifts drawn at random. */
function perturbedWeights(seed: number): StateDict {
  const sd = resnet18({ numClasses: 3, baseWidth: 4, seed, backend: backendByName('reference') }).stateDict();
  const rng = new Rng(seed + 1000);
  for (const [key, t] of sd) {
    // batch-norm parameters are the 1-D float tensors other than the classifier's bias
    if (t.dtype === 'int64' || t.shape.length !== 1 || key === 'fc.bias') continue;
    const d = t.data as Float32Array;
    const draw = key.endsWith('running_var') ? () => 0.5 + rng.uniform()
      : key.endsWith('running_mean') || key.endsWith('.bias') ? () => 0.4 * (rng.uniform() - 0.5)
        : () => 0.6 + 0.8 * rng.uniform();
    for (let i = 0; i < d.length; i++) d[i] = draw();
  }
  return sd;
}

let root = '';
let split: Split;
let trained: StateDict;
const loaderFor = (s: Split): Loader =>
  new Loader(s, { batchSize: 8, shuffle: false, seed: 0, dropLast: false, augment: { crop: false, flip: false } });

before(async () => {
  root = tempDir('evaluation');
  process.env.RESNET_CACHE_DIR = path.join(root, 'cache');
  const dataDir = await makeDataset(path.join(root, 'data'), { testPerClass: TEST_PER_CLASS });
  split = (await openDataset(dataDir)).test;
  const run = path.join(root, 'run');
  assert.equal((await trainQuiet({ config: tinyConfig({ epochs: 2 }), data: dataDir, out: run, worker: false })).result.status, 'completed');
  trained = (await loadWeights(run)).stateDict;
});
after(() => removeDir(root));

/** The graph's evaluation and the unfused eval-mode model's, of the same weights on the same batches. */
async function both(be: Backend, sd: StateDict): Promise<[Awaited<ReturnType<typeof evaluateModel>>, Awaited<ReturnType<typeof evaluate>>]> {
  const graph = InferenceGraph.fromStateDict(sd, be);
  const model = resnet18({ numClasses: 3, baseWidth: 4, backend: be });
  model.loadStateDict(sd);
  try {
    return [await evaluateModel(graph, loaderFor(split)), await evaluate(model, loaderFor(split), 3)];
  } finally {
    graph.dispose();
    model.dispose();
  }
}

function relative(a: number, b: number): number {
  return Math.abs(a - b) / Math.abs(b);
}

const native = nativeUnavailableReason();
const skipNative = native && process.env.RESNET_REQUIRE_NATIVE !== '1' ? `native backend unavailable: ${native}` : false;

describe('eval through the inference graph equals the eval-mode training graph', () => {
  for (const name of ['reference', 'native'] as const) {
    test(`${name} backend, fp32: same confusion and accuracy, loss within 1e-4 relative`, { skip: name === 'native' && skipNative }, async () => {
      for (const [what, sd] of [['trained', trained], ['random batch norm', perturbedWeights(3)]] as const) {
        const [g, m] = await both(backendByName(name), sd);
        assert.equal(g.n, TEST_PER_CLASS.reduce((a, b) => a + b, 0));
        assert.equal(g.n, m.n);
        assert.deepEqual(g.confusion, m.confusion, what);
        assert.deepEqual(g.perClassAcc, m.perClassAcc);
        assert.equal(g.acc, m.acc);
        assert.ok(relative(g.loss, m.loss) <= 1e-4, `${what}: loss ${g.loss} against ${m.loss}`);
      }
      // the trained model predicts more than one class: the confusion matrices compared above are not one column
      const [g] = await both(backendByName(name), trained);
      const predicted = g.confusion[0].map((_, j) => g.confusion.reduce((s, row) => s + row[j], 0));
      assert.ok(predicted.filter((v) => v > 0).length >= 2, JSON.stringify(g.confusion));
    });
  }

  const bf16Skip = (): string | false => skipNative || (backendByName('native').bf16Unavailable() ?? false);
  test('native backend, bf16: loss within 3e-2 relative of the unfused bf16 model', { skip: bf16Skip() }, async () => {
    const be = backendByName('native');
    be.setPrecision('bf16');
    try {
      const [g, m] = await both(be, trained);
      assert.equal(g.n, m.n);
      assert.ok(relative(g.loss, m.loss) <= 3e-2, `loss ${g.loss} against ${m.loss}`);
      // bf16 rounding may move an image near a decision boundary, not many
      const moved = g.confusion.flat().reduce((s, v, i) => s + Math.abs(v - m.confusion.flat()[i]), 0) / 2;
      assert.ok(moved <= 2, `${moved} images classified differently`);
    } finally {
      be.setPrecision('fp32');
    }
  });
});
