/**
 * The engine benchmark behind `resnet bench`: ResNet-18 (CIFAR) training images/s at batch B (forward, backward and
 * SGD step, as the seed's loop), inference images/s at batch B, latency at batch 1 and peak resident memory.
 * Random inputs: the figure is the engine's, not the data pipeline's. With RESNET_PROFILE=1 on the native backend it
 * also reports where a training step's time goes, per kernel.
 */
import type { Backend, Precision } from '../backend/backend';
import { cpuModel } from '../util/cpu';
import { InferenceGraph, type WholeGraphCheck } from '../models/inference';
import { SEED_SPEC, buildModel, type ModelSpec } from '../models';
import { SGD } from '../nn/optim';
import { Tensor, noGrad, tidy } from '../tensor';
import { trainStep } from '../train/step';
import { Rng } from '../util/rng';
import type { OpenMpSetting } from '../backend/native';

export interface BenchOptions {
  backend: Backend;
  batch?: number;
  /** timed training steps (after one warm-up step) */
  steps?: number;
  /** timed inference batches */
  inferSteps?: number;
  /** timed batch-1 forward passes */
  latencyRuns?: number;
  /** the model measured (default the seed's: width 64, 10 classes, 32x32) */
  spec?: ModelSpec;
  log?: (msg: string) => void;
}

/** Median batch-1 latency (ms) of the folded inference graph of a fresh model: what `bench` runs in a child process. */
export function runLatency(opts: { backend: Backend; runs?: number; spec?: ModelSpec }): number {
  const spec = opts.spec ?? SEED_SPEC;
  const S = spec.inputSize;
  const model = buildModel(spec, { backend: opts.backend, seed: 0 }).eval();
  const graph = InferenceGraph.fromStateDict(model.stateDict(), opts.backend);
  model.dispose();
  const x1 = randomBatch(1, spec, new Rng(1)).x;
  const { latencyMs } = timeInference((d, n) => { graph.forward(d, [n, 3, S, S]); }, x1, 1, x1, 1, opts.runs ?? 50);
  graph.dispose();
  return latencyMs;
}

export interface BenchResult {
  backend: string;
  backend_detail: string;
  /** the precision of convolutions and linear layers (bf16: mixed precision, see backend.ts) */
  precision: Precision;
  /** the instruction sets the kernels ran with */
  isa: string;
  /** the CPU's model name */
  cpu: string;
  batch: number;
  train_img_s: number;
  train_step_ms: number;
  infer_img_s: number;
  /**
   * batch 1 through the folded graph, in this process: OpenMP's throughput profile (sleeping threads), as training
   * runs; the CLI replaces it with the figure of a process in the latency profile that predict and serve use, and keeps
   * this one as latency_ms_b1_throughput_profile
   */
  latency_ms_b1: number;
  latency_ms_b1_throughput_profile?: number;
  /** The OpenMP setting latency_ms_b1 was measured with (the child process's), where it comes from one. */
  latency_openmp?: OpenMpSetting;
  /** the same through the training graph in eval mode (batch norm, add and ReLU as kernels of their own) */
  infer_img_s_unfused: number;
  latency_ms_b1_unfused: number;
  peak_rss_mb: number;
  steps: number;
  profile?: Record<string, { calls: number; ms: number; share: number }>;
  /** with the profile: the algorithm each convolution (pass|shapes|stride|padding) runs with, and the times measured */
  conv_choices?: Array<{ key: string; algo: string; ms: Record<string, number> }>;
  /** with RESNET_PROFILE=1: the whole-graph decisions this run used that were read from the cache file (no check made) */
  infer_whole_graph_saved?: Array<{ batch: number; direct: boolean }>;
  /** with the profile: the inference graph's whole-graph checks of its per-layer choices at small batches */
  infer_whole_graph_checks?: WholeGraphCheck[];
}

function randomBatch(n: number, spec: ModelSpec, rng: Rng): { x: Float32Array; y: Int32Array } {
  const x = new Float32Array(n * 3 * spec.inputSize * spec.inputSize);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  const y = Int32Array.from({ length: n }, () => rng.int(spec.numClasses));
  return { x, y };
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

interface Profiler {
  reset(): void;
  read(): Record<string, { calls: number; ms: number }>;
  convChoices(): NonNullable<BenchResult['conv_choices']>;
  /** the whole-graph decisions read from the cache file: "graph|backend|precision|shape|network" -> direct|chosen */
  savedDecisions(): Array<{ key: string; value: string }>;
}

function nativeProfiler(be: Backend): Profiler | null {
  if (be.name !== 'native' || process.env.RESNET_PROFILE !== '1') return null;
  const native = require('../backend/native') as typeof import('../backend/native');
  return {
    reset: native.resetNativeProfile,
    read: native.nativeProfile,
    convChoices: () => native.convChoices().choices.map(({ key, algo, ms }) => ({ key, algo, ms })),
    savedDecisions: () => native.convChoices().decisions.filter((d) => !d.measured),
  };
}

/** Median ms of a batch of B and of a single image, each after one untimed run. */
function timeInference(
  run: (x: Float32Array, n: number) => void, xB: Float32Array, B: number, x1: Float32Array, steps: number, latRuns: number,
): { batchMs: number; latencyMs: number } {
  const timed = (x: Float32Array, n: number, times: number): number => {
    run(x, n);
    const ms: number[] = [];
    for (let s = 0; s < times; s++) {
      const t0 = performance.now();
      run(x, n);
      ms.push(performance.now() - t0);
    }
    return median(ms);
  };
  return { batchMs: timed(xB, B, steps), latencyMs: timed(x1, 1, latRuns) };
}

export function runBench(opts: BenchOptions): BenchResult {
  const be = opts.backend;
  const B = opts.batch ?? 128;
  const steps = opts.steps ?? 5;
  const log = opts.log ?? (() => {});
  const rng = new Rng(1);
  const spec = opts.spec ?? SEED_SPEC;
  const S = spec.inputSize;
  const model = buildModel(spec, { backend: be, seed: 0 }).train();
  const opt = new SGD(model.namedParameters(), { lr: 0.001, momentum: 0.9, weightDecay: 5e-4 });
  const { x: xData, y } = randomBatch(B, spec, rng);
  const x = Tensor.fromArray(xData, [B, 3, S, S], be);
  const step = (): number => trainStep(model, opt, x, y);
  log(`warm-up training step (batch ${B}) on ${be.name}`);
  step();
  const prof = nativeProfiler(be);
  prof?.reset();
  const times: number[] = [];
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    step();
    times.push(performance.now() - t0);
    log(`train step ${s + 1}/${steps}: ${times[s].toFixed(0)} ms`);
  }
  const stepMs = median(times);
  const profile = prof ? summariseProfile(prof.read(), times.reduce((a, b) => a + b, 0)) : undefined;

  // inference as predict and serve run it: the folded graph of the trained weights (src/models/inference.ts);
  // the training graph in eval mode is measured too, for comparison
  model.eval();
  const graph = InferenceGraph.fromStateDict(model.stateDict(), be);
  const x1 = xData.subarray(0, 3 * S * S);
  const fused = timeInference((d, n) => { graph.forward(d, [n, 3, S, S]); }, xData, B, x1, opts.inferSteps ?? steps, opts.latencyRuns ?? 20);
  const wholeGraphChecks = [...graph.wholeGraphChecks()];
  graph.dispose();
  const unfused = timeInference((d, n) => {
    noGrad(() => tidy(() => { model.forward(Tensor.fromArray(d, [n, 3, S, S], be)).toArray(); }));
  }, xData, B, x1, opts.inferSteps ?? steps, opts.latencyRuns ?? 20);
  x.dispose();
  opt.dispose();
  model.dispose();
  return {
    backend: be.name,
    backend_detail: be.describe(),
    precision: be.precision(),
    isa: be.isa(),
    cpu: cpuModel(),
    batch: B,
    train_img_s: (B * 1000) / stepMs,
    train_step_ms: stepMs,
    infer_img_s: (B * 1000) / fused.batchMs,
    latency_ms_b1: fused.latencyMs,
    infer_img_s_unfused: (B * 1000) / unfused.batchMs,
    latency_ms_b1_unfused: unfused.latencyMs,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    steps,
    profile,
    // this run's convolutions: its batch sizes (B and 1) at its precision (bf16 keys end in |bf16)
    infer_whole_graph_checks: prof ? wholeGraphChecks : undefined,
    infer_whole_graph_saved: prof?.savedDecisions().flatMap(({ key, value }) => {
      const [, , precision, shape] = key.split('|');
      const batch = Number(shape?.split(',')[0]);
      return precision === be.precision() && (batch === 1 || batch === B) ? [{ batch, direct: value === 'direct' }] : [];
    }),
    conv_choices: prof?.convChoices().filter((c) => /^\w+\|\[(\d+),/.exec(c.key)?.[1] === String(B) &&
      c.key.endsWith('|bf16') === (be.precision() === 'bf16')),
  };
}

function summariseProfile(
  raw: Record<string, { calls: number; ms: number }>, totalMs: number,
): Record<string, { calls: number; ms: number; share: number }> {
  const out: Record<string, { calls: number; ms: number; share: number }> = {};
  const sorted = Object.entries(raw).sort((a, b) => b[1].ms - a[1].ms);
  for (const [k, v] of sorted) out[k] = { calls: v.calls, ms: v.ms, share: v.ms / totalMs };
  return out;
}
