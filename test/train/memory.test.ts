/**
 * Memory stays flat over 500 training steps of ResNet-18 (narrow width and small batches so that it runs in
 * seconds): after every step the number of live native storages returns to the same value (parameters, BN buffers
 * and momentum buffers only: tidy() and backward() free everything else deterministically), and the process's
 * resident memory does not grow between step 100 and step 500.
 * The loop yields to the event loop after each step, as the trainer does while it awaits the next batch: buffers
 * go back to the pool at dispose(), but the small N-API handle of a disposed storage is reclaimed by its finalizer,
 * which Node runs when the event loop turns.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backendByName } from '../../src/backend';
import { nativeAvailable, nativeMemoryStats } from '../../src/backend/native';
import { resnet18 } from '../../src/models/resnet';
import { SGD } from '../../src/nn';
import { Tensor, crossEntropy, tidy } from '../../src/tensor';
import { Rng } from '../../src/util/rng';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

// JavaScript garbage (small typed arrays read back from the engine) is the collector's business, not a leak:
// collect it before each reading so that the figure is the engine's memory.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function rssAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().rss;
}

const avail = nativeAvailable();
const skip = avail.ok || process.env.RESNET_REQUIRE_NATIVE === '1' ? false : `native addon unavailable: ${avail.ok ? '' : avail.reason}`;

test('500 training steps: live storages constant, resident memory flat', { skip }, async () => {
  const be = backendByName('native');
  const model = resnet18({ backend: be, baseWidth: 8, seed: 3 }).train();
  const opt = new SGD(model.namedParameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  const rng = new Rng(5);
  const N = 8;
  const x = new Float32Array(N * 3 * 32 * 32).map(() => rng.normal());
  const y = Int32Array.from({ length: N }, () => rng.int(10));
  const step = () => {
    tidy(() => {
      const loss = crossEntropy(model.forward(Tensor.fromArray(x, [N, 3, 32, 32], be)), y);
      loss.backward();
      opt.step();
    });
    opt.zeroGrad();
  };
  step();
  const live = nativeMemoryStats().liveTensors;
  let rss100 = 0;
  for (let s = 1; s <= 500; s++) {
    await new Promise((resolve) => setImmediate(resolve));
    step();
    assert.equal(nativeMemoryStats().liveTensors, live, `step ${s}: live storages ${nativeMemoryStats().liveTensors}, expected ${live}`);
    if (s === 100) rss100 = rssAfterGc();
  }
  const growthMb = (rssAfterGc() - rss100) / 2 ** 20;
  assert.ok(growthMb < 16, `resident memory grew by ${growthMb.toFixed(1)} MB between step 100 and 500 (${JSON.stringify(nativeMemoryStats())})`);
  opt.dispose();
  model.dispose();
});
