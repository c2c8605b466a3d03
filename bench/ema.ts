/**
 * Cost of the moving average of the weights (src/train/ema.ts) beside the training step it follows: prints figures,
 * asserts nothing. The seed's ResNet-18 (10 classes) on the native backend: the median time of WeightEma.update()
 * (two scales and an in-place add per tensor, 11.2 M parameters and the batch-norm buffers), of stateDict() (the host
 * copy made for each checkpoint and evaluation), and of one training step on a batch of 128 random images.
 * Run: `npx tsx bench/ema.ts [steps]` (default 5 training steps, 20 updates). This machine is shared: quote the load.
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { backendByName } from '../src/backend';
import { SEED_SPEC, buildModel } from '../src/models';
import { SGD } from '../src/nn/optim';
import { Tensor } from '../src/tensor';
import { WeightEma } from '../src/train/ema';
import { trainStep } from '../src/train/step';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function timeEach(n: number, fn: () => void): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    fn();
    out.push(performance.now() - t0);
  }
  return out;
}

const steps = Number(process.argv[2] ?? 5);
const be = backendByName('native');
const model = buildModel({ ...SEED_SPEC, numClasses: 10 }, { seed: 0, backend: be });
const opt = new SGD(model.namedParameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4, nesterov: true });
const ema = WeightEma.of(model, 0.999);
const x = Tensor.fromArray(Float32Array.from({ length: 128 * 3 * 32 * 32 }, (_, i) => Math.sin(i)), [128, 3, 32, 32], be);
const y = Int32Array.from({ length: 128 }, (_, i) => i % 10);

const update = timeEach(20, () => ema.update());
const host = timeEach(5, () => ema.stateDict());
const step = timeEach(steps, () => trainStep(model, opt, x, y));
const ms = (v: number) => `${v.toFixed(1)} ms`;
console.log(`load average ${loadavg().map((v) => v.toFixed(2)).join(' ')}`);
console.log(`WeightEma.update()      median ${ms(median(update))} (min ${ms(Math.min(...update))}, 20 runs)`);
console.log(`WeightEma.stateDict()   median ${ms(median(host))} (5 runs)`);
console.log(`training step (128)     median ${ms(median(step))} (${steps} runs, the first included)`);
console.log(`update / step           ${(100 * median(update) / median(step)).toFixed(2)}%`);
x.dispose();
ema.dispose();
opt.dispose();
model.dispose();
