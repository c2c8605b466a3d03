/**
 * ONNX export (src/interop/onnx.ts) run by onnxruntime-node against PyTorch's logits:
 *  - the full-size fixture model (trained-looking BatchNorm statistics) on 4 images, and on 1 (dynamic batch);
 *  - the reduced-width model torch saved, which also shows that widths come from the weights;
 * and the refusals: missing, unexpected and mis-shaped keys, by name. The comparison with our engine's logits is
 * in logits.test.ts. Bar: relative error ≤ 1e-4.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ONNX_INPUT_NAME, ONNX_OUTPUT_NAME, exportOnnx, seedStateDictProblems } from '../../src/interop/onnx';
import { readPthFile } from '../../src/interop/pth-read';
import type { StateDict } from '../../src/tensor/host';
import { expectLogitsClose, firstImages, interopFixture, referenceLogits, runOnnx, seedFixtureStateDict } from './helpers';

describe('exportOnnx → onnxruntime matches PyTorch', () => {
  const seed = seedFixtureStateDict();
  const seedModel = exportOnnx(seed);
  const ref = referenceLogits('seed_logits.pth');

  test('the seed ResNet-18, 4 images', async () => {
    const out = await runOnnx(seedModel, ref.input);
    assert.deepEqual(out.dims, [4, 10]);
    expectLogitsClose(out.data, ref.logits.data as Float32Array, 'onnx logits vs PyTorch');
  });

  test('the batch dimension is dynamic: 1 image gives the first row', async () => {
    const out = await runOnnx(seedModel, firstImages(ref.input, 1));
    assert.deepEqual(out.dims, [1, 10]);
    expectLogitsClose(out.data, (ref.logits.data as Float32Array).slice(0, 10), 'onnx logits, batch 1');
  });

  test('opset 17 (IR 8) runs too', async () => {
    const out = await runOnnx(exportOnnx(seed, { opset: 17 }), firstImages(ref.input, 2));
    expectLogitsClose(out.data, (ref.logits.data as Float32Array).slice(0, 20), 'onnx opset 17');
  });

  test('a reduced-width model saved by torch.save (widths from the weights)', async () => {
    const tiny = readPthFile(interopFixture('tiny_zip.pth')).stateDict;
    const tinyRef = referenceLogits('tiny_logits.pth');
    const out = await runOnnx(exportOnnx(tiny), tinyRef.input);
    assert.deepEqual(out.dims, [3, 10]);
    expectLogitsClose(out.data, tinyRef.logits.data as Float32Array, 'tiny onnx logits vs PyTorch');
  });
});

describe('exportOnnx: the model it writes', () => {
  test('names input/output as documented and keeps the state-dict names for its initializers', () => {
    const bytes = exportOnnx(readPthFile(interopFixture('tiny_zip.pth')).stateDict);
    const text = new TextDecoder('latin1').decode(bytes);
    for (const s of [ONNX_INPUT_NAME, ONNX_OUTPUT_NAME, 'layer4.1.left.3.weight', 'BatchNormalization', 'AveragePool', 'Gemm']) {
      assert.ok(text.includes(s), `model mentions ${s}`);
    }
    assert.ok(!text.includes('num_batches_tracked'), 'no num_batches_tracked initializer');
  });

  test('refuses an opset outside 13..21', () => {
    assert.throws(() => exportOnnx(new Map(), { opset: 12 }), /exportOnnx: expected opset 13\.\.21, received 12/);
  });
});

describe('seedStateDictProblems / exportOnnx: wrong weights are listed by name', () => {
  const tiny = (): StateDict => new Map(readPthFile(interopFixture('tiny_zip.pth')).stateDict);

  test('the torch-made tiny model has no problems', () => {
    assert.deepEqual(seedStateDictProblems(tiny()), []);
  });

  test('missing, unexpected and mis-shaped keys', () => {
    const sd = tiny();
    sd.delete('layer2.0.shortcut.0.weight');
    sd.delete('layer3.1.left.1.running_var');
    sd.set('extra.weight', sd.get('fc.bias')!);
    sd.set('fc.bias', { dtype: 'float32', shape: [11], data: new Float32Array(11) });
    const problems = seedStateDictProblems(sd);
    assert.deepEqual(problems, [
      'missing layer2.0.shortcut.0.weight',
      'missing layer3.1.left.1.running_var',
      'fc.bias: expected float32 [10], received float32 [11]',
      'unexpected extra.weight',
    ]);
    assert.throws(() => exportOnnx(sd), /exportOnnx: the weights are not the seed's ResNet-18: missing layer2\.0\.shortcut\.0\.weight/);
  });

  test('int64 where float32 is expected', () => {
    const sd = tiny();
    sd.set('conv1.1.weight', { dtype: 'int64', shape: [4], data: new BigInt64Array(4) });
    assert.deepEqual(seedStateDictProblems(sd), ['conv1.1.weight: expected float32 [4], received int64 [4]']);
  });
});
