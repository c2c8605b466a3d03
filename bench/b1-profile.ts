/**
 * Where a batch-1 forward of the folded inference graph spends its time, in OpenMP's latency profile (as predict
 * and serve run it): the median, min and mean of RUNS forwards, then the per-kernel profile (reorders included)
 * and each convolution's chosen algorithm with the times measured for it.
 *   npx tsx bench/b1-profile.ts [runs] [fp32|bf16]
 * B1_BATCH=N times batch N instead of 1 (throughput's shapes; the whole-graph check only runs up to 16).
 * B1_PERCONV=1 adds each convolution's median time and GFLOP/s; B1_LAYOUTS=1 prints every convolution's input,
 * residual and output layout. RESNET_CONV_ALGO=direct and friends force an algorithm (src/backend/native).
 */
import { setOpenMpProfile } from '../src/backend/native/binding';
import { createNativeBackend, nativeLayoutOf, convChoices, nativeProfile, resetNativeProfile, setNativeProfiling } from '../src/backend/native';
import { applyPrecision } from '../src/backend/precision';
import { SEED_SPEC, buildModel } from '../src/models';
import { InferenceGraph } from '../src/models/inference';

setOpenMpProfile('latency');
const runs = Number(process.argv[2] ?? 200);
const precision = (process.argv[3] ?? 'fp32') as 'fp32' | 'bf16';
const be = createNativeBackend();
applyPrecision(precision, be);
const model = buildModel(SEED_SPEC, { backend: be, seed: 0 }).eval();
const graph = InferenceGraph.fromStateDict(model.stateDict(), be);
const N = Number(process.env.B1_BATCH ?? 1);
const x = new Float32Array(N * 3 * 32 * 32).map((_, i) => Math.sin(i));
for (let i = 0; i < 20; i++) graph.forward(x, [N, 3, 32, 32]);
const times: number[] = [];
for (let i = 0; i < runs; i++) {
  const t = process.hrtime.bigint();
  graph.forward(x, [N, 3, 32, 32]);
  times.push(Number(process.hrtime.bigint() - t) / 1e6);
}
times.sort((a, b) => a - b);
console.log(`median ${times[runs >> 1].toFixed(3)} ms, min ${times[0].toFixed(3)} ms, mean ${(times.reduce((a, b) => a + b, 0) / runs).toFixed(3)} ms over ${runs} (${precision})`);
const tp = process.hrtime.bigint();
setNativeProfiling(true);
resetNativeProfile();
for (let i = 0; i < runs; i++) graph.forward(x, [N, 3, 32, 32]);
setNativeProfiling(false);
console.log(`profiled mean ${(Number(process.hrtime.bigint() - tp) / 1e6 / runs).toFixed(3)} ms`);
const prof = Object.entries(nativeProfile()).sort((a, b) => b[1].ms - a[1].ms);
for (const [k, v] of prof) console.log(`${(v.ms / runs).toFixed(4).padStart(8)} ms ${String(v.calls / runs).padStart(5)}x  ${k}`);
for (const c of convChoices().choices.filter((c) => c.key.startsWith('infer|'))) {
  console.log(c.algo.padEnd(16), c.key, JSON.stringify(c.ms));
}
if (process.env.B1_LAYOUTS) {
  const orig = be.conv2dInfer.bind(be);
  (be as { conv2dInfer: typeof be.conv2dInfer }).conv2dInfer = (x, xs, w, ws, b, p, r, relu, chained) => {
    const y = orig(x, xs, w, ws, b, p, r, relu, chained);
    console.log(`[${xs}] w[${ws}] x:${nativeLayoutOf(x)} r:${r ? nativeLayoutOf(r) : '-'} -> y:${nativeLayoutOf(y)}`);
    return y;
  };
  graph.forward(x, [N, 3, 32, 32]);
}
if (process.env.B1_PERCONV) {
  const orig = be.conv2dInfer.bind(be);
  const per = new Map<string, number[]>();
  (be as { conv2dInfer: typeof be.conv2dInfer }).conv2dInfer = (x, xs, w, ws, b, p, r, relu, chained) => {
    const t = process.hrtime.bigint();
    const y = orig(x, xs, w, ws, b, p, r, relu, chained);
    const k = `[${xs}] w[${ws}]${r ? ' +r' : ''}`;
    if (!per.has(k)) per.set(k, []);
    per.get(k)!.push(Number(process.hrtime.bigint() - t) / 1e6);
    return y;
  };
  for (let i = 0; i < runs; i++) graph.forward(x, [N, 3, 32, 32]);
  let sum = 0;
  for (const [k, v] of per) {
    v.sort((a, b) => a - b);
    const reps = v.length / runs;
    const med = v[v.length >> 1] * reps;
    sum += med;
    const [xs, ws] = k.match(/\[[^\]]*\]/g)!.map((s) => JSON.parse(s) as number[]);
    const flop = xs[0] * 2 * ws[0] * ws[1] * ws[2] * ws[3] * (xs[2] / (ws[2] === 1 ? 2 : xs[1] === ws[0] || xs[1] === 3 ? 1 : 2)) ** 2 * reps;
    console.log(`${med.toFixed(4)} ms  ${(flop / med / 1e6).toFixed(0).padStart(5)} GFLOP/s  ${reps}x ${k}`);
  }
  console.log(`sum of medians ${sum.toFixed(3)} ms`);
}
for (const c of graph.wholeGraphChecks()) {
  console.log(`whole-graph check at batch ${c.batch}: per-layer choices ${c.chosenMs.toFixed(3)} ms, direct ${c.directMs.toFixed(3)} ms`);
}
