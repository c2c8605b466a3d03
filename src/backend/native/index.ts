/**
 * The native backend: the `Backend` interface over the oneDNN addon (float32 only).
 *
 * What it is: a thin adapter. JS checks dtypes and storage ownership; C++ (native/*.cc) checks shapes and
 * computes. Storages wrap a handle to a C++ tensor whose physical layout may be oneDNN's blocked one
 * (nChw16c after a convolution); `toArray` and `reshape` return plain row-major data, as the contract says.
 * Also exported: availability, memory-pool statistics and the per-kernel profile (RESNET_PROFILE=1).
 * What it is not: float64 (use the reference backend), nor the addon loader (binding.ts).
 * References: src/backend/backend.ts (the contract); docs/native.md (build, layouts, figures).
 */
import type {
  Backend, BatchNormParams, BatchNormSaved, Conv2dParams, DType, FloatArray, Pool2dParams, SgdParams, Shape,
  Storage,
} from '../backend';
import { checkSgdParams, convOutputShape, numelOf, poolOutputShape } from '../backend';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { defaultCacheDir } from '../../util/paths';
import {
  type Handle, type NativeAddon, type NativeConvChoices, type NativeMemoryStats, loadAddon, tryLoadAddon,
} from './binding';

export type { NativeConvChoice, NativeConvChoices, NativeMemoryStats, OpenMpProfile, OpenMpSetting } from './binding';
export { envForChildProfile, openMpSetting, setOpenMpProfile } from './binding';

/**
 * How convolutions pick their algorithm (native/conv_select.h): `benchmark` (default) measures the candidates
 * (oneDNN direct, oneDNN Winograd where the CPU has it, ours; for inference of few input channels our direct kernel
 * too, which `ours-direct` forces, and for inference oneDNN direct on channel-blocked activations, which
 * `direct-blocked` forces, and for inference of small output maps our matrix-product kernel, which `ours-gemm`
 * forces) on first use of each shape and keeps the fastest;
 * `deterministic` runs oneDNN direct everywhere (fixed and the most accurate: what the golden tests use); the
 * others force one algorithm where it applies. RESNET_CONV_ALGO sets it for a process.
 */
export const CONV_POLICIES = ['benchmark', 'deterministic', 'direct', 'auto', 'winograd', 'onednn-winograd', 'ours-direct', 'direct-blocked', 'ours-gemm'] as const;
export type ConvPolicy = (typeof CONV_POLICIES)[number];

/** Sets the convolution policy for later calls (choices already measured are kept). */
export function setConvPolicy(policy: ConvPolicy): void {
  if (!CONV_POLICIES.includes(policy)) {
    throw new Error(`setConvPolicy: expected one of ${CONV_POLICIES.join(', ')}, received ${JSON.stringify(policy)}`);
  }
  loadAddon().setConvPolicy(policy);
}

/**
 * Reads and writes choices in `file` from now on (null: keeps them in memory only), as RESNET_CONV_CACHE does for a
 * process; the choices and decisions already made stay. For tests that need a cache of their own.
 */
export function setConvCacheFile(file: string | null): void {
  loadAddon().setConvPolicy(null, file);
}

/** The policy in force and every choice the benchmark policy has made (or read from its cache file). */
export function convChoices(): NativeConvChoices {
  return loadAddon().convChoices();
}

/**
 * The benchmark's cache file: RESNET_CONV_CACHE (a path, or `off`), else conv-choices.tsv in the cache
 * folder. Choices are reused only on the machine and configuration that measured them (the file's first line).
 */
function convCacheFile(): string | null {
  const v = process.env.RESNET_CONV_CACHE;
  if (v === 'off') return null;
  const file = v || join(defaultCacheDir(), 'conv-choices.tsv');
  try {
    mkdirSync(join(file, '..'), { recursive: true });
  } catch {
    return null; // a cache: without a writable folder, choices are measured in every process
  }
  return file;
}

/**
 * Forgets this machine's measured convolution choices and whole-graph decisions (`resnet bench --retune`): removes
 * the cache file, so that the next process to need a choice measures it afresh. For a machine that was busy when
 * the choices were first measured (a choice, once recorded, is kept: the first one recorded wins). Returns the file
 * and how many entries it held, or null when there is no file (or RESNET_CONV_CACHE=off). Call it before the
 * backend is created: a process that has already read the file keeps its choices in memory.
 */
export function forgetConvChoices(): { file: string; entries: number } | null {
  const file = convCacheFile();
  if (file === null || !existsSync(file)) return null;
  const entries = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#')).length;
  rmSync(file, { force: true });
  return { file, entries };
}

export const NATIVE_NAME = 'native';

export class NativeStorage implements Storage {
  readonly backend = NATIVE_NAME;
  readonly dtype: DType = 'float32';
  private h: Handle | null;

  constructor(readonly numel: number, handle: Handle) {
    this.h = handle;
  }

  get disposed(): boolean {
    return this.h === null;
  }

  /** The live handle; throws when disposed. */
  handleFor(op: string, name: string): Handle {
    if (this.h === null) throw new Error(`${op}: ${name} is a disposed storage (using a storage after dispose is an error)`);
    return this.h;
  }

  release(): Handle | null {
    const h = this.h;
    this.h = null;
    return h;
  }
}

/** The handle of a live native storage argument; names op and argument otherwise. */
function h(op: string, name: string, s: Storage): Handle {
  if (!(s instanceof NativeStorage)) {
    throw new Error(`${op}: expected ${name} to be a native storage, received a ${s?.backend ?? typeof s} storage`);
  }
  return s.handleFor(op, name);
}

function hOpt(op: string, name: string, s: Storage | null): Handle | null {
  return s === null ? null : h(op, name, s);
}

function f32Only(op: string, dtype: DType | string): void {
  if (dtype !== 'float32') {
    throw new Error(`${op}: the native backend supports float32 only, received ${dtype} (use the reference backend)`);
  }
}

const wrap = (handle: Handle, shape: Shape): NativeStorage => new NativeStorage(numelOf(shape), handle);

/** Whether the addon loads here, and why not. */
export function nativeAvailable(): { ok: true } | { ok: false; reason: string } {
  const r = tryLoadAddon();
  return r.ok ? { ok: true } : { ok: false, reason: r.reason };
}

/** Wall time and calls per kernel since the last reset; empty unless RESNET_PROFILE=1 was set at start. */
export function nativeProfile(): Record<string, { calls: number; ms: number }> {
  return loadAddon().profile();
}

export function resetNativeProfile(): void {
  loadAddon().resetProfile();
}

/** Switches the profile on or off at run time (RESNET_PROFILE=1 switches it on at load). */
export function setNativeProfiling(on: boolean): void {
  loadAddon().setProfiling(on);
}

/** The buffer pool and primitive cache: memory that should stay flat over a training run. */
export function nativeMemoryStats(): NativeMemoryStats {
  return loadAddon().memoryStats();
}

/** Frees the buffers the pool keeps for reuse (live storages are untouched). */
export function trimNativeMemory(): void {
  loadAddon().trimMemory();
}

/** Private: the physical layout of a storage ('plain' or 'blocked ...', 'bf16 blocked ...' for bf16), for tests and diagnostics. */
export function nativeLayoutOf(s: Storage): string {
  return loadAddon().layoutOf(h('layoutOf', 's', s));
}

/** Backend-private contents of BatchNormSaved.storages: [mean, var (biased, or running in eval), workspace?] */
interface NativeBnExtra {
  readonly kind: 'native-batchnorm';
  readonly training: boolean;
  readonly relu: boolean;
}

function bnSaved(op: string, saved: BatchNormSaved, p: BatchNormParams): { mean: Handle; variance: Handle; ws: Handle | null } {
  const e = saved?.extra as NativeBnExtra | undefined;
  if (!e || e.kind !== 'native-batchnorm') {
    throw new Error(`${op}: expected saved state from the native backend's batchNorm2d, received something else`);
  }
  if (e.training !== p.training || e.relu !== p.relu) {
    throw new Error(
      `${op}: expected params matching the forward pass (training=${e.training}, relu=${e.relu}), ` +
        `received training=${p.training}, relu=${p.relu}`,
    );
  }
  const [mean, variance, ws] = saved.storages;
  return { mean: h(op, 'saved mean', mean), variance: h(op, 'saved var', variance), ws: ws ? h(op, 'saved workspace', ws) : null };
}

function batchNormCheck(op: string, shape: Shape, p: BatchNormParams): void {
  if (!(p.eps > 0)) throw new Error(`${op}: expected eps > 0, received ${p.eps}`);
  if (!(p.momentum >= 0 && p.momentum <= 1)) throw new Error(`${op}: expected momentum in [0,1], received ${p.momentum}`);
  if (p.training && shape.length === 4 && shape[0] * shape[2] * shape[3] < 2) {
    throw new Error(`${op}: training needs more than 1 value per channel (N*H*W > 1), received x [${shape.join(',')}]`);
  }
}

function memoryKernels(A: NativeAddon): Pick<Backend, 'fromArray' | 'toArray' | 'zeros' | 'dispose' | 'reshape'> {
  return {
    fromArray(data: FloatArray, shape: Shape): Storage {
      if (!(data instanceof Float32Array)) f32Only('fromArray', data?.constructor?.name ?? typeof data);
      return wrap(A.fromArray(data as Float32Array, shape), shape);
    },
    toArray: (s, shape) => A.toArray(h('toArray', 's', s), shape),
    zeros(shape, dtype) {
      f32Only('zeros', dtype);
      return wrap(A.zeros(shape), shape);
    },
    dispose(s) {
      h('dispose', 's', s);
      const handle = (s as NativeStorage).release();
      if (handle) A.dispose(handle);
    },
    reshape: (s, from, to) => wrap(A.reshape(h('reshape', 's', s), from, to), to),
  };
}

function elementwiseKernels(A: NativeAddon): Pick<
  Backend, 'add' | 'addInPlace' | 'scale' | 'relu' | 'reluBackward' | 'addRelu' | 'sum' | 'sgdStep'
> {
  return {
    add: (a, b, shape) => wrap(A.add(h('add', 'a', a), h('add', 'b', b), shape), shape),
    addInPlace: (a, b, shape) => A.addInPlace(h('addInPlace', 'a', a), h('addInPlace', 'b', b), shape),
    scale: (a, s, shape) => wrap(A.scale(h('scale', 'a', a), s, shape), shape),
    relu: (x, shape) => wrap(A.relu(h('relu', 'x', x), shape), shape),
    reluBackward: (dy, y, shape) => wrap(A.reluBackward(h('reluBackward', 'dy', dy), h('reluBackward', 'y', y), shape), shape),
    addRelu: (a, b, shape) => wrap(A.addRelu(h('addRelu', 'a', a), h('addRelu', 'b', b), shape), shape),
    sum: (a, shape) => A.sum(h('sum', 'a', a), shape),
    sgdStep(param: Storage, grad: Storage, buf: Storage | null, shape: Shape, p: SgdParams, firstStep: boolean): void {
      const op = 'sgdStep';
      checkSgdParams(op, p, buf !== null);
      A.sgdStep(
        h(op, 'param', param), h(op, 'grad', grad), hOpt(op, 'momentumBuf', buf), shape,
        p.lr, p.momentum, p.dampening, p.weightDecay, p.nesterov, firstStep,
      );
    },
  };
}

function convKernels(A: NativeAddon): Pick<Backend, 'conv2d' | 'conv2dInfer' | 'conv2dBackwardData' | 'conv2dBackwardWeights'> {
  return {
    conv2d(x, xShape, w, wShape, b, p: Conv2dParams) {
      const op = 'conv2d';
      const y = A.conv2d(h(op, 'x', x), xShape, h(op, 'w', w), wShape, hOpt(op, 'b', b), p.stride, p.padding);
      return wrap(y, convOutputShape(xShape, wShape, p));
    },
    conv2dInfer(x, xShape, w, wShape, b, p, residual, relu, opts = {}) {
      const op = 'conv2dInfer';
      const consume = residual !== null && (opts.consumeResidual ?? false);
      if (consume && residual === x) throw new Error(`${op}: a consumed residual cannot also be the input x`);
      const y = A.conv2dInfer(h(op, 'x', x), xShape, h(op, 'w', w), wShape, h(op, 'b', b), p.stride, p.padding,
        hOpt(op, 'residual', residual), relu, opts.chained ?? false, opts.direct ?? false, consume);
      if (consume) (residual as NativeStorage).release(); // the addon disposed it (or its buffer is y's now)
      return wrap(y, convOutputShape(xShape, wShape, p));
    },
    conv2dBackwardData(dy, w, xShape, wShape, p) {
      const op = 'conv2dBackwardData';
      return wrap(A.conv2dBackwardData(h(op, 'dy', dy), h(op, 'w', w), xShape, wShape, p.stride, p.padding), xShape);
    },
    conv2dBackwardWeights(dy, x, xShape, wShape, p, withBias) {
      const op = 'conv2dBackwardWeights';
      const [dw, db] = A.conv2dBackwardWeights(h(op, 'dy', dy), h(op, 'x', x), xShape, wShape, p.stride, p.padding, withBias);
      return { dw: wrap(dw, wShape), db: db ? wrap(db, [wShape[0]]) : null };
    },
  };
}

function batchNormKernels(A: NativeAddon): Pick<Backend, 'batchNorm2d' | 'batchNorm2dBackward'> {
  return {
    batchNorm2d(x, shape, gamma, beta, runningMean, runningVar, p) {
      const op = 'batchNorm2d';
      batchNormCheck(op, shape, p);
      const [y, mean, variance, ws] = A.batchNorm2d(
        h(op, 'x', x), shape, h(op, 'gamma', gamma), h(op, 'beta', beta), h(op, 'runningMean', runningMean),
        h(op, 'runningVar', runningVar), p.eps, p.momentum, p.training, p.relu,
      );
      const C = shape[1];
      const storages = [wrap(mean, [C]), wrap(variance, [C]), ...(ws ? [wrap(ws, shape)] : [])];
      const extra: NativeBnExtra = { kind: 'native-batchnorm', training: p.training, relu: p.relu };
      return { y: wrap(y, shape), saved: { storages, extra } };
    },
    batchNorm2dBackward(dy, x, shape, gamma, beta, saved, p) {
      const op = 'batchNorm2dBackward';
      const s = bnSaved(op, saved, p);
      const [dx, dgamma, dbeta] = A.batchNorm2dBackward(
        h(op, 'dy', dy), h(op, 'x', x), shape, h(op, 'gamma', gamma), h(op, 'beta', beta), s.mean, s.variance, s.ws,
        p.eps, p.training, p.relu,
      );
      const C = shape[1];
      return { dx: wrap(dx, shape), dgamma: wrap(dgamma, [C]), dbeta: wrap(dbeta, [C]) };
    },
  };
}

function otherKernels(A: NativeAddon): Pick<
  Backend, 'avgPool2d' | 'avgPool2dBackward' | 'poolLinearInfer' | 'linear' | 'linearBackward' | 'softmax' | 'logSoftmax' |
  'softmaxBackward' | 'logSoftmaxBackward' | 'crossEntropy' | 'crossEntropyBackward'
> {
  return {
    avgPool2d(x, xShape, p: Pool2dParams) {
      const y = A.avgPool2d(h('avgPool2d', 'x', x), xShape, p.kernel, p.stride, p.padding);
      return wrap(y, poolOutputShape(xShape, p));
    },
    avgPool2dBackward: (dy, xShape, p) =>
      wrap(A.avgPool2dBackward(h('avgPool2dBackward', 'dy', dy), xShape, p.kernel, p.stride, p.padding), xShape),
    poolLinearInfer(x, xShape, w, wShape, b) {
      const op = 'poolLinearInfer';
      return wrap(A.poolLinearInfer(h(op, 'x', x), xShape, h(op, 'w', w), wShape, h(op, 'b', b)), [xShape[0], wShape[0]]);
    },
    linear(x, xShape, w, wShape, b) {
      const op = 'linear';
      return wrap(A.linear(h(op, 'x', x), xShape, h(op, 'w', w), wShape, hOpt(op, 'b', b)), [xShape[0], wShape[0]]);
    },
    linearBackward(dy, x, xShape, w, wShape, withBias) {
      const op = 'linearBackward';
      const [dx, dw, db] = A.linearBackward(h(op, 'dy', dy), h(op, 'x', x), xShape, h(op, 'w', w), wShape, withBias);
      return { dx: wrap(dx, xShape), dw: wrap(dw, wShape), db: db ? wrap(db, [wShape[0]]) : null };
    },
    softmax: (x, shape) => wrap(A.softmax(h('softmax', 'x', x), shape), shape),
    logSoftmax: (x, shape) => wrap(A.logSoftmax(h('logSoftmax', 'x', x), shape), shape),
    softmaxBackward: (dy, y, shape) =>
      wrap(A.softmaxBackward(h('softmaxBackward', 'dy', dy), h('softmaxBackward', 'y', y), shape), shape),
    logSoftmaxBackward: (dy, y, shape) =>
      wrap(A.logSoftmaxBackward(h('logSoftmaxBackward', 'dy', dy), h('logSoftmaxBackward', 'y', y), shape), shape),
    crossEntropy(logits, shape, targets, labelSmoothing) {
      const [loss, probs] = A.crossEntropy(h('crossEntropy', 'logits', logits), shape, targets, labelSmoothing);
      return { loss, probs: wrap(probs, shape) };
    },
    crossEntropyBackward: (probs, shape, targets, labelSmoothing, gradOutput) =>
      wrap(A.crossEntropyBackward(h('crossEntropyBackward', 'probs', probs), shape, targets, labelSmoothing, gradOutput), shape),
  };
}

/** The native backend; throws (saying what to install) when the addon cannot be loaded. */
export function createNativeBackend(): Backend {
  const A = loadAddon();
  A.setConvPolicy(null, convCacheFile());
  return {
    name: NATIVE_NAME,
    describe: () => `native: ${A.describe()}`,
    freeze: (s) => A.freeze(h('freeze', 's', s)),
    timesConvAlgos: () => A.convPolicy() === 'benchmark',
    savedDecision: (key) => A.convDecision(`graph|${key}`) ?? undefined,
    saveDecision: (key, value) => A.recordConvDecision(`graph|${key}`, value),
    isa() {
      const d = A.describe();
      return `oneDNN ${/ISA (\S+),/.exec(d)?.[1] ?? '?'}, ours ${/our kernels (\S+),/.exec(d)?.[1] ?? '?'}`;
    },
    bf16Unavailable: () => A.precisionInfo().bf16.reason,
    setPrecision: (p) => A.setPrecision(p),
    precision: () => A.precisionInfo().precision,
    ...memoryKernels(A),
    ...elementwiseKernels(A),
    ...convKernels(A),
    ...batchNormKernels(A),
    ...otherKernels(A),
  };
}
