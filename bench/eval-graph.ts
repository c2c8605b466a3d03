/**
 * `resnet eval`'s evaluation speed: prints figures, asserts nothing. The training graph in eval mode
 * (src/train/evaluate.ts, what eval ran before) against the folded inference graph (src/predict/evaluation.ts, what it
 * runs now): the same weights, the same first 2,000 test images of the loader's seeded subset, batches of 256, after a
 * warm-up of one batch of each size through each. Wall time, and this process's CPU time (all threads): on a shared,
 * loaded machine the CPU time is the steadier figure.
 * Run: `npx tsx bench/eval-graph.ts WEIGHTS DATA fp32|bf16` (e.g. a run's checkpoints/best.ckpt and
 * ../shared/data/cifar10-jpg.tar.gz).
 */
import { useBackend } from '../src/backend';
import { applyPrecision } from '../src/backend/precision';
import { openDataset, Loader } from '../src/data';
import { loadWeights } from '../src/interop/weights';
import { modelFromWeights } from '../src/models';
import { InferenceGraph } from '../src/models/inference';
import { evaluate } from '../src/train/evaluate';
import { evaluateModel } from '../src/predict/evaluation';

async function timed<T extends { n: number; acc: number; loss: number }>(what: string, precision: string, f: () => Promise<T>): Promise<void> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await f();
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1e6;
  console.log(JSON.stringify({ what, precision, n: r.n, wall_s: +wall.toFixed(1), cpu_s: +cpu.toFixed(1), img_per_wall_s: +(r.n / wall).toFixed(1), img_per_cpu_s: +(r.n / cpu).toFixed(1), acc: r.acc, loss: r.loss }));
}

async function main(): Promise<void> {
  const be = useBackend('native');
  const precision = process.argv[4];
  applyPrecision(precision, be);
  const w = await loadWeights(process.argv[2]);
  const data = await openDataset(process.argv[3]);
  const loader = (limit: number): Loader => new Loader(data.test, { batchSize: 256, shuffle: false, seed: 0, dropLast: false, limit, augment: { crop: false, flip: false } });
  const { model } = modelFromWeights(w.stateDict, { recorded: w.spec, where: 'bench', backend: be });
  const graph = InferenceGraph.fromStateDict(model.stateDict(), be);
  // warm-up: one batch of 256 and one of the last batch's 208 (2000 = 7 x 256 + 208) through each, so that primitive
  // creation and the convolution choices per shape are not timed
  for (const n of [256, 208]) {
    await evaluate(model, loader(n), 10);
    await evaluateModel(graph, loader(n));
  }
  await timed('training graph, eval mode (before)', precision, () => evaluate(model, loader(2000), 10));
  await timed('inference graph (after)', precision, () => evaluateModel(graph, loader(2000)));
  graph.dispose();
  model.dispose();
}
if (process.argv.length < 5) {
  console.error('usage: npx tsx bench/eval-graph.ts WEIGHTS DATA fp32|bf16');
  process.exit(2);
}
void main();
