/**
 * The model factory (src/models): a spec builds the model whose state dict it describes, inferSpec reads width and
 * classes back from the shapes alone, and weights that do not fit are refused with a short list of keys and a count.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { backendByName } from '../../src/backend';
import {
  SEED_SPEC, buildModel, checkSpec, expectedEntries, fitToSpec, inferSpec, modelFromWeights, specForWeights, type ModelSpec,
} from '../../src/models';
import type { StateDict } from '../../src/tensor/host';
import { readPthFile } from '../../src/interop/pth-read';
import { interopFixture, seedFixtureStateDict } from '../interop/helpers';

const reference = backendByName('reference');
const spec = (width: number, numClasses: number): ModelSpec => ({ arch: 'resnet18', width, numClasses, inputSize: 32 });

function stateDictOf(s: ModelSpec, seed = 0): StateDict {
  const m = buildModel(s, { backend: reference, seed });
  const sd = m.stateDict();
  m.dispose();
  return sd;
}

describe('buildModel / expectedEntries', () => {
  test('the model of a spec has exactly the keys and shapes expectedEntries lists, in order', () => {
    for (const s of [spec(4, 3), spec(6, 10)]) {
      const sd = stateDictOf(s);
      assert.deepEqual([...sd].map(([k, t]) => [k, t.shape]), expectedEntries(s).map((e) => [e.key, e.shape]));
    }
  });

  test('a bad spec is refused naming the field', () => {
    assert.throws(() => buildModel({ ...SEED_SPEC, width: 0 }), /model spec of buildModel: width: expected a positive integer, received 0/);
    assert.throws(() => checkSpec({ ...SEED_SPEC, inputSize: 64 }, 'run.json'), /model spec of run.json: inputSize: expected 32 \(the CIFAR stem\), received 64/);
    assert.throws(() => checkSpec({ arch: 'vgg' }, 'x'), /arch: expected 'resnet18', received "vgg"; width: expected a positive integer, received undefined/);
  });
});

describe('inferSpec', () => {
  test('PyTorch-made state dicts: the seed model and a torch-saved width-4 one', () => {
    assert.deepEqual(inferSpec(seedFixtureStateDict()), SEED_SPEC);
    assert.deepEqual(inferSpec(readPthFile(interopFixture('tiny_zip.pth')).stateDict), spec(4, 10));
  });

  test('reads width and classes from the shapes', () => {
    assert.deepEqual(inferSpec(stateDictOf(spec(16, 3))), spec(16, 3));
    assert.deepEqual(inferSpec(stateDictOf(spec(4, 10))), spec(4, 10));
  });

  test('a dict of another width in its later layers: the short error names the first keys and a count', () => {
    const sd = stateDictOf(spec(4, 10));
    for (const [k, t] of stateDictOf(spec(8, 10))) if (k.startsWith('layer3.') || k.startsWith('layer4.')) sd.set(k, t);
    assert.throws(() => inferSpec(sd), (err: Error) => {
      assert.match(err.message, new RegExp('^inferSpec: the weights do not fit ResNet-18 at width 4 with 10 classes ' +
        '\\(from conv1\\.0\\.weight and fc\\.weight\\): mis-shaped keys: layer3\\.0\\.left\\.0\\.weight: expected \\[16,8,3,3\\], ' +
        'received \\[32,16,3,3\\]; (.*?; ){4}and 45 more \\(50 in all\\)$'));
      assert.ok(err.message.length < 800, `short: ${err.message.length} characters`);
      return true;
    });
  });

  test('no first convolution, or an fc that does not match it', () => {
    assert.throws(() => inferSpec(new Map([['a', { dtype: 'float32', shape: [1], data: new Float32Array(1) }]])),
      /^Error: inferSpec: expected a ResNet-18 state dict with fc\.weight of shape \[classes, 8\*width\] and conv1\.0\.weight of shape \[width,3,3,3\], received keys a$/);
    const sd = stateDictOf(spec(4, 10));
    sd.set('fc.weight', { dtype: 'float32', shape: [10, 64], data: new Float32Array(640) });
    assert.throws(() => inferSpec(sd), /, received conv1\.0\.weight float32 \[4,3,3,3\] and fc\.weight float32 \[10,64\]$/);
  });

  test('missing and unexpected keys are named; a missing num_batches_tracked is allowed', () => {
    const sd = stateDictOf(spec(4, 3));
    sd.delete('layer2.0.shortcut.0.weight');
    sd.delete('conv1.1.num_batches_tracked');
    sd.set('extra', { dtype: 'float32', shape: [1], data: new Float32Array(1) });
    sd.set('conv1.1.weight', { dtype: 'int64', shape: [4], data: new BigInt64Array(4) });
    assert.throws(() => inferSpec(sd),
      /: missing keys: layer2\.0\.shortcut\.0\.weight; unexpected keys: extra; mis-shaped keys: conv1\.1\.weight: expected float32 \[4\], received int64 \[4\]$/);
    assert.deepEqual(fitToSpec(sd, spec(4, 3)).lines, [
      'conv1.1.weight: expected float32 [4], received int64 [4]', 'missing layer2.0.shortcut.0.weight', 'unexpected extra',
    ]);
  });
});

describe('specForWeights / modelFromWeights', () => {
  test('a recorded spec is checked against the shapes', () => {
    const sd = stateDictOf(spec(4, 3));
    assert.deepEqual(specForWeights(sd, spec(4, 3), 'a.ckpt'), spec(4, 3));
    assert.throws(() => specForWeights(sd, spec(8, 3), 'a.ckpt'),
      /^Error: a\.ckpt records the model resnet18 \(width 8, 3 classes, 32x32 input\), but its weights do not fit it: mis-shaped keys: conv1\.0\.weight: expected \[8,3,3,3\], received \[4,3,3,3\]; /);
    const partial = stateDictOf(spec(4, 3));
    partial.delete('layer1.0.left.0.weight');
    assert.throws(() => specForWeights(partial, undefined, '--weights p.pth'), /^Error: --weights p\.pth does not fit ResNet-18: missing keys: layer1\.0\.left\.0\.weight$/);
  });

  test('loads the weights into the model it builds, in eval mode', () => {
    const sd = stateDictOf(spec(4, 3), 5);
    sd.delete('conv1.1.num_batches_tracked');
    const { model, spec: s } = modelFromWeights(sd, { backend: reference, where: 'w.pth' });
    assert.deepEqual(s, spec(4, 3));
    assert.equal(model.training, false);
    assert.deepEqual(model.stateDict().get('layer4.1.left.3.weight')!.data, sd.get('layer4.1.left.3.weight')!.data);
    model.dispose();
  });
});
