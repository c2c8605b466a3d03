/**
 * runBench (src/bench/model-bench.ts) builds its model through the factory: a spec other than the seed's is
 * measured as given (here a tiny one on the reference backend, so that the test takes a second). No timing is
 * asserted: benchmarks report numbers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backendByName } from '../../src/backend';
import { runBench } from '../../src/bench/model-bench';

test('runBench measures the model of the spec it is given', () => {
  const r = runBench({
    backend: backendByName('reference'), batch: 2, steps: 1, inferSteps: 1, latencyRuns: 1,
    spec: { arch: 'resnet18', width: 2, numClasses: 3, inputSize: 32 },
  });
  assert.equal(r.backend, 'reference');
  assert.equal(r.batch, 2);
  assert.ok(r.train_step_ms > 0 && r.infer_img_s > 0 && r.latency_ms_b1 > 0, JSON.stringify(r));
  assert.throws(() => runBench({ backend: backendByName('reference'), spec: { arch: 'resnet18', width: 0, numClasses: 3, inputSize: 32 } }),
    /model spec of buildModel: width: expected a positive integer, received 0/);
});
