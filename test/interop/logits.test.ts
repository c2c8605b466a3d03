/**
 * The end-to-end checks, on the full-size seed ResNet-18 with trained-looking BatchNorm statistics:
 *  - weights PyTorch saved (seed_bn_fc.pth) completed with the fixture conv weights, written by our .pth writer
 *    and read back through loadWeights, give PyTorch's eval logits in our engine;
 *  - the ONNX export run by onnxruntime gives our engine's logits.
 * Bar: relative error ≤ 1e-4. Runs on the default backend (native when built, else reference); the slow
 * reference backend takes the first 2 of the 4 images (about 20 s each on 2 shared cores).
 * Reading safetensors through loadWeights is checked in weights.test.ts (the same state dict, bit for bit).
 */
import { describe, test, before, after } from 'node:test';
import * as path from 'node:path';
import { loadWeights } from '../../src/interop/weights';
import { writePthFile } from '../../src/interop/pth-write';
import { exportOnnx } from '../../src/interop/onnx';
import { modelFromWeights } from '../../src/models';
import { Tensor, noGrad } from '../../src/tensor';
import { getBackend } from '../../src/backend';
import type { HostTensor, StateDict } from '../../src/tensor/host';
import { expectLogitsClose, firstImages, referenceLogits, runOnnx, seedFixtureStateDict, tempDir } from './helpers';

function engineLogits(sd: StateDict, x: HostTensor): Float32Array {
  const { model } = modelFromWeights(sd, { where: 'engineLogits' });
  try {
    return noGrad(() => {
      const input = Tensor.fromArray(x.data as Float32Array, [...x.shape]);
      const out = model.forward(input);
      const values = out.toArray() as Float32Array;
      out.dispose();
      input.dispose();
      return Float32Array.from(values);
    });
  } finally {
    model.dispose();
  }
}

describe('PyTorch weights → our engine → PyTorch logits', () => {
  const all = referenceLogits('seed_logits.pth');
  const n = getBackend().name === 'reference' ? 2 : 4;
  const ref = { input: firstImages(all.input, n), logits: (all.logits.data as Float32Array).slice(0, n * 10) };
  let tmp: ReturnType<typeof tempDir>;
  let seed: StateDict;
  let ours: Float32Array;

  before(() => {
    tmp = tempDir();
    seed = seedFixtureStateDict();
  });
  after(() => tmp.remove());

  test('through a .pth written by us and read by loadWeights', async () => {
    const file = path.join(tmp.dir, 'seed.pth');
    writePthFile(file, seed);
    const loaded = await loadWeights(file);
    ours = engineLogits(loaded.stateDict, ref.input);
    expectLogitsClose(ours, ref.logits, `engine logits (pth, ${n} images) vs PyTorch`);
  });

  test('the ONNX export run by onnxruntime gives our engine\'s logits', async () => {
    ours ??= engineLogits(seed, ref.input);
    const out = await runOnnx(exportOnnx(seed), ref.input);
    expectLogitsClose(out.data, ours, 'onnxruntime vs engine');
  });
});
