/**
 * The typed binding to the oneDNN addon (build/Release/resnet_native.node): the only file that `require`s it.
 *
 * What it is: declarations of the addon's functions (argument order as in native/*.cc) and a loader that
 * explains, when the addon is missing or fails to load, exactly what to install and how to rebuild.
 * What it is not: the Backend; index.ts adapts these functions to the `Backend` interface.
 * References: native/addon.cc (the export list); node-addon-api External (the handles); tfjs-node (a
 * typed binding is the only place that touches the native addon).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** An opaque handle to a native tensor (a type-tagged N-API External). */
export interface Handle {
  readonly __nativeHandle: unique symbol;
}

type Dims = readonly number[];
type Pair = readonly [number, number];

export interface NativeMemoryStats {
  /** storages created and not yet disposed (or collected) */
  liveTensors: number;
  /** pool buffers handed out (tensors and temporaries) and their bytes */
  liveBuffers: number;
  liveBytes: number;
  /** freed buffers kept for reuse, their bytes, and the limit (RESNET_POOL_MB) */
  pooledBuffers: number;
  pooledBytes: number;
  poolLimitBytes: number;
  /** allocations served from the pool / from the system */
  hits: number;
  misses: number;
  /** cached oneDNN primitives */
  primitives: number;
}

/** One measured (or cached) choice of the convolution benchmark: pass|shapes|stride|padding[|bias] -> algorithm. */
export interface NativeConvChoice {
  key: string;
  algo: string;
  /** measured in this process (else read from the cache file) */
  measured: boolean;
  /** each candidate's best time in ms (empty when read from the cache file) */
  ms: Record<string, number>;
}

/** A named decision above single convolutions ("graph|..." keys: the inference graph's whole-graph check). */
export interface NativeConvDecision {
  key: string;
  value: string;
  /** recorded by this process (else read from the cache file) */
  measured: boolean;
}

export interface NativeConvChoices {
  policy: string;
  cacheFile: string | null;
  choices: NativeConvChoice[];
  decisions: NativeConvDecision[];
}

export interface NativeAddon {
  fromArray(data: Float32Array, shape: Dims): Handle;
  zeros(shape: Dims): Handle;
  toArray(s: Handle, shape: Dims): Float32Array;
  reshape(s: Handle, from: Dims, to: Dims): Handle;
  dispose(s: Handle): void;
  /** 'plain' or 'blocked <descriptor key>' */
  layoutOf(s: Handle): string;

  add(a: Handle, b: Handle, shape: Dims): Handle;
  addInPlace(a: Handle, b: Handle, shape: Dims): void;
  scale(a: Handle, s: number, shape: Dims): Handle;
  relu(x: Handle, shape: Dims): Handle;
  reluBackward(dy: Handle, y: Handle, shape: Dims): Handle;
  addRelu(a: Handle, b: Handle, shape: Dims): Handle;
  sum(a: Handle, shape: Dims): number;
  sgdStep(
    param: Handle, grad: Handle, buf: Handle | null, shape: Dims, lr: number, momentum: number, dampening: number,
    weightDecay: number, nesterov: boolean, firstStep: boolean,
  ): void;

  conv2d(x: Handle, xShape: Dims, w: Handle, wShape: Dims, b: Handle | null, stride: Pair, padding: Pair): Handle;
  conv2dBackwardData(dy: Handle, w: Handle, xShape: Dims, wShape: Dims, stride: Pair, padding: Pair): Handle;
  conv2dInfer(
    x: Handle, xShape: Dims, w: Handle, wShape: Dims, b: Handle, stride: Pair, padding: Pair, residual: Handle | null, relu: boolean,
    chained: boolean, direct: boolean, consume: boolean,
  ): Handle;
  freeze(t: Handle): void;
  poolLinearInfer(x: Handle, xShape: Dims, w: Handle, wShape: Dims, b: Handle): Handle;
  conv2dBackwardWeights(
    dy: Handle, x: Handle, xShape: Dims, wShape: Dims, stride: Pair, padding: Pair, withBias: boolean,
  ): [Handle, Handle | null];

  /** -> [y, mean, var, workspace | null] */
  batchNorm2d(
    x: Handle, shape: Dims, gamma: Handle, beta: Handle, runningMean: Handle, runningVar: Handle, eps: number,
    momentum: number, training: boolean, relu: boolean,
  ): [Handle, Handle, Handle, Handle | null];
  /** -> [dx, dgamma, dbeta] */
  batchNorm2dBackward(
    dy: Handle, x: Handle, shape: Dims, gamma: Handle, beta: Handle, mean: Handle, variance: Handle,
    workspace: Handle | null, eps: number, training: boolean, relu: boolean,
  ): [Handle, Handle, Handle];

  avgPool2d(x: Handle, xShape: Dims, kernel: Pair, stride: Pair, padding: Pair): Handle;
  avgPool2dBackward(dy: Handle, xShape: Dims, kernel: Pair, stride: Pair, padding: Pair): Handle;

  linear(x: Handle, xShape: Dims, w: Handle, wShape: Dims, b: Handle | null): Handle;
  /** -> [dx, dw, db | null] */
  linearBackward(dy: Handle, x: Handle, xShape: Dims, w: Handle, wShape: Dims, withBias: boolean): [Handle, Handle, Handle | null];

  softmax(x: Handle, shape: Dims): Handle;
  logSoftmax(x: Handle, shape: Dims): Handle;
  softmaxBackward(dy: Handle, y: Handle, shape: Dims): Handle;
  logSoftmaxBackward(dy: Handle, y: Handle, shape: Dims): Handle;
  /** -> [loss, probs] */
  crossEntropy(logits: Handle, shape: Dims, targets: Int32Array, labelSmoothing: number): [number, Handle];
  crossEntropyBackward(probs: Handle, shape: Dims, targets: Int32Array, labelSmoothing: number, gradOutput: number): Handle;

  setConvPolicy(policy: string | null, cacheFile?: string | null): void;
  setPrecision(p: 'fp32' | 'bf16'): void;
  precisionInfo(): { precision: 'fp32' | 'bf16'; bf16: { ok: boolean; reason: string | null } };
  convChoices(): NativeConvChoices;
  convPolicy(): string;
  /** the value recorded for a "graph|..." key, here or in the cache file, or null */
  convDecision(key: string): string | null;
  /** records value for key unless another process recorded one first; returns the value in force */
  recordConvDecision(key: string, value: string): string;

  describe(): string;
  memoryStats(): NativeMemoryStats;
  trimMemory(): void;
  profile(): Record<string, { calls: number; ms: number }>;
  resetProfile(): void;
  setProfiling(on: boolean): void;
}

export const INSTALL_HINT =
  'install oneDNN and a compiler (Debian/Ubuntu: `apt-get install -y libdnnl-dev g++ make python3`), ' +
  'then rebuild the addon with `npm run build:native`';

/** Where the addon may be: RESNET_NATIVE_ADDON, else build/Release under the package root (src/ or dist/src/). */
function candidates(): string[] {
  const fromEnv = process.env.RESNET_NATIVE_ADDON;
  if (fromEnv) return [path.resolve(fromEnv)];
  const rel = path.join('build', 'Release', 'resnet_native.node');
  return [path.resolve(__dirname, '..', '..', '..', rel), path.resolve(__dirname, '..', '..', '..', '..', rel)];
}

/** The addon file that would be loaded, or null when none is built (for tests that start it in a child process). */
export function nativeAddonPath(): string | null {
  return candidates().find((p) => fs.existsSync(p)) ?? null;
}

let loaded: { ok: true; addon: NativeAddon } | { ok: false; reason: string } | undefined;

/**
 * OpenMP threads that finish early spin while waiting for the others (OMP_WAIT_POLICY=active). When the machine
 * runs other work too, a spinning thread burns the core its partner needs, and a training step measured here took
 * twice as long as with waiting threads that sleep. Sleeping costs a few microseconds per parallel region (well
 * under 1% of a step), so it is our default; OMP_WAIT_POLICY set by the user wins. libgomp reads it when the
 * addon loads it, hence before the require.
 */
function setOpenMpDefaults(): void {
  if (process.env.OMP_WAIT_POLICY !== undefined) return;
  if (profile === 'throughput') setOwn('OMP_WAIT_POLICY', 'passive');
  else if (process.env.GOMP_SPINCOUNT === undefined) setOwn('GOMP_SPINCOUNT', String(LATENCY_SPINCOUNT));
}

/** The variables setOpenMpDefaults put into process.env (not the user's). */
const ownOpenMpVars = new Set<string>();
function setOwn(name: string, value: string): void {
  process.env[name] = value;
  ownOpenMpVars.add(name);
}

/**
 * process.env less the OpenMP settings this process's profile put there, for a child process that chooses its own
 * profile: inheriting a throughput parent's OMP_WAIT_POLICY=passive, a child in the latency profile would keep
 * sleeping threads (what `resnet bench` measured its batch-1 latency with: 4.9 ms against 2.8 on a Zen 5).
 * Settings the user made stay.
 */
export function envForChildProfile(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ownOpenMpVars) delete env[k];
  return env;
}

/** How long an idle thread spins in the latency profile, in libgomp's spin iterations (see OpenMpProfile). */
export const LATENCY_SPINCOUNT = 1000;

/**
 * throughput: the default above (sleeping threads), for training and batch work. latency: an idle thread spins for
 * LATENCY_SPINCOUNT iterations before it sleeps, for predict and serve, where a batch-1 forward pass is a few
 * milliseconds and waking sleeping threads for each of its ~20 layers costs as much again. Measured on the 2-core
 * AMD EPYC (AVX-512), batch-1 fp32 latency idle / beside a training run: sleeping threads 13.2-13.4 / ~15 ms; spin
 * 1,000: 7.9-9.7 / 18.7 ms; 10,000: 8.1 / 47-83 ms; libgomp's default 300,000: 7.6-8.4 / 136 ms. 1,000 keeps most
 * of the gain and little of the harm. It must be chosen before the addon loads (libgomp reads the setting once).
 */
export type OpenMpProfile = 'throughput' | 'latency';
let profile: OpenMpProfile = 'throughput';

/** Chooses the profile for this process; false (and no change) when the addon is already loaded. */
export function setOpenMpProfile(p: OpenMpProfile): boolean {
  if (loaded !== undefined) return false;
  profile = p;
  return true;
}

/** The profile in effect, and what libgomp was given ("default" when left to libgomp). */
/** An OpenMP profile and the settings libgomp ran with ('default' where none was set). */
export interface OpenMpSetting { profile: OpenMpProfile; waitPolicy: string; spinCount: string }

export function openMpSetting(): OpenMpSetting {
  return { profile, waitPolicy: process.env.OMP_WAIT_POLICY ?? 'default', spinCount: process.env.GOMP_SPINCOUNT ?? 'default' };
}

/** Loads the addon from the first existing path; never throws (exported for tests of the failure message). */
export function tryLoadAddonFrom(paths: readonly string[]): { ok: true; addon: NativeAddon } | { ok: false; reason: string } {
  const file = paths.find((p) => fs.existsSync(p));
  if (!file) return { ok: false, reason: `native addon not found (looked for ${paths.join(', ')}); ${INSTALL_HINT}` };
  setOpenMpDefaults();
  try {
    return { ok: true, addon: require(file) as NativeAddon };
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    return { ok: false, reason: `native addon ${file} failed to load (${msg}); ${INSTALL_HINT}` };
  }
}

/** Loads the addon once; never throws. */
export function tryLoadAddon(): { ok: true; addon: NativeAddon } | { ok: false; reason: string } {
  loaded ??= tryLoadAddonFrom(candidates());
  return loaded;
}

/** The addon, or an Error saying what to install and how to rebuild. */
export function loadAddon(): NativeAddon {
  const r = tryLoadAddon();
  if (!r.ok) throw new Error(`native backend unavailable: ${r.reason}`);
  return r.addon;
}
