/**
 * Kernel benchmark of the native backend at the ResNet-18 (CIFAR) layer shapes, batch 128 by default.
 *
 * What it is: times each kernel (median of a few runs after a warm-up) on inputs in the layouts a training
 * step really feeds them (activations coming out of convolutions, i.e. oneDNN's blocked layout), prints ms and
 * GFLOP/s (convolutions, linear) or GB/s (memory-bound kernels, nominal bytes: inputs read once, outputs
 * written once), then an estimated training step (forward, backward, SGD) and inference pass by multiplying
 * each kernel's time by how often ResNet-18 calls it.
 * What it is not: a measurement of the real step (that is `resnet bench` with RESNET_PROFILE=1), and not a test.
 * Run: `npx tsx bench/kernels.ts [batch] [--cpu]`. Env RESNET_CONV_ALGO=direct|winograd|auto picks the
 * convolution algorithm; OMP_NUM_THREADS the thread count.
 * References: He et al. 2016 (arXiv:1512.03385) and the seed's CIFAR ResNet-18 (3x3 stem, no max-pool,
 * stages 64/128/256/512 at 32/16/8/4 pixels, 1x1 stride-2 shortcuts).
 */
import { performance } from 'node:perf_hooks';
import type { Backend, BatchNormParams, Conv2dParams, Shape, Storage } from '../src/backend/backend';
import { convOutputShape, numelOf } from '../src/backend/backend';
import { createNativeBackend, nativeAvailable } from '../src/backend/native';

const args = process.argv.slice(2);
/** --cpu: time by this process's CPU time instead of wall time (for a shared, loaded machine; pair it with
 * OMP_NUM_THREADS=1, where CPU time is compute time, since with 2 threads it also counts OpenMP spin-waits) */
const CPU_CLOCK = args.includes('--cpu');
const N = Number(args.find((a) => /^\d+$/.test(a)) ?? 128);
const REPS = 3;

function now(): number {
  if (!CPU_CLOCK) return performance.now();
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

interface Row { name: string; ms: number; perStep: number; perInfer: number; rate: string }
const rows: Row[] = [];

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

/** median ms of fn() over REPS runs after one warm-up; fn returns storages to dispose */
function time(B: Backend, fn: () => Storage[]): number {
  const ts: number[] = [];
  for (let i = 0; i <= REPS; i++) {
    const t0 = now();
    const out = fn();
    const t = now() - t0;
    for (const s of out) B.dispose(s);
    if (i > 0) ts.push(t);
  }
  return median(ts);
}

function rand(shape: Shape, scale = 1): Float32Array {
  const a = new Float32Array(numelOf(shape));
  for (let i = 0; i < a.length; i++) a[i] = (Math.random() * 2 - 1) * scale;
  return a;
}

/** A storage of `shape` in the layout a convolution leaves (blocked), via a 1x1 convolution. */
function blocked(B: Backend, shape: Shape): Storage {
  const C = shape[1];
  const x = B.fromArray(rand(shape), shape);
  const w = B.fromArray(rand([C, C, 1, 1], 1 / Math.sqrt(C)), [C, C, 1, 1]);
  const y = B.conv2d(x, shape, w, [C, C, 1, 1], null, { stride: [1, 1], padding: [0, 0] });
  B.dispose(x);
  B.dispose(w);
  return y;
}

const gflops = (flop: number, ms: number): string => `${(flop / ms / 1e6).toFixed(1)} GFLOP/s`;
const gbs = (bytes: number, ms: number): string => `${(bytes / ms / 1e6).toFixed(1)} GB/s`;

function add(name: string, ms: number, perStep: number, perInfer: number, rate: string): void {
  rows.push({ name, ms, perStep, perInfer, rate });
  console.log(`${name.padEnd(44)} ${ms.toFixed(2).padStart(8)} ms  x${String(perStep).padEnd(3)} ${rate}`);
}

interface ConvLayer { C: number; K: number; H: number; R: number; s: number; count: number; first?: boolean }
// ResNet-18/CIFAR: (in, out, input size, kernel, stride, how many such convolutions)
const CONVS: ConvLayer[] = [
  { C: 3, K: 64, H: 32, R: 3, s: 1, count: 1, first: true },
  { C: 64, K: 64, H: 32, R: 3, s: 1, count: 4 },
  { C: 64, K: 128, H: 32, R: 3, s: 2, count: 1 },
  { C: 64, K: 128, H: 32, R: 1, s: 2, count: 1 },
  { C: 128, K: 128, H: 16, R: 3, s: 1, count: 3 },
  { C: 128, K: 256, H: 16, R: 3, s: 2, count: 1 },
  { C: 128, K: 256, H: 16, R: 1, s: 2, count: 1 },
  { C: 256, K: 256, H: 8, R: 3, s: 1, count: 3 },
  { C: 256, K: 512, H: 8, R: 3, s: 2, count: 1 },
  { C: 256, K: 512, H: 8, R: 1, s: 2, count: 1 },
  { C: 512, K: 512, H: 4, R: 3, s: 1, count: 3 },
];

function benchConvs(B: Backend): void {
  for (const L of CONVS) {
    const xS = [N, L.C, L.H, L.H], wS = [L.K, L.C, L.R, L.R];
    const p: Conv2dParams = { stride: [L.s, L.s], padding: [(L.R - 1) / 2, (L.R - 1) / 2] };
    const yS = convOutputShape(xS, wS, p);
    const x = L.first ? B.fromArray(rand(xS), xS) : blocked(B, xS);
    const w = B.fromArray(rand(wS, 0.1), wS);
    const dy = blocked(B, yS);
    const flop = 2 * numelOf(yS) * L.C * L.R * L.R;
    const tag = `conv ${L.C}->${L.K} ${L.R}x${L.R} s${L.s} @${L.H}`;
    const fwd = time(B, () => [B.conv2d(x, xS, w, wS, null, p)]);
    add(`${tag} fwd`, fwd, L.count, L.count, gflops(flop, fwd));
    if (!L.first) {
      const ms = time(B, () => [B.conv2dBackwardData(dy, w, xS, wS, p)]);
      add(`${tag} bwd-data`, ms, L.count, 0, gflops(flop, ms));
    }
    const ms = time(B, () => [B.conv2dBackwardWeights(dy, x, xS, wS, p, false).dw]);
    add(`${tag} bwd-weights`, ms, L.count, 0, gflops(flop, ms));
    for (const s of [x, w, dy]) B.dispose(s);
  }
}

// per stage: BN count, of which with fused ReLU, addRelu count (shapes at batch N)
const STAGES = [
  { C: 64, H: 32, bn: 5, bnRelu: 3, adds: 2 },
  { C: 128, H: 16, bn: 5, bnRelu: 2, adds: 2 },
  { C: 256, H: 8, bn: 5, bnRelu: 2, adds: 2 },
  { C: 512, H: 4, bn: 5, bnRelu: 2, adds: 2 },
];

function benchMemoryBound(B: Backend): void {
  for (const st of STAGES) {
    const S = [N, st.C, st.H, st.H];
    const bytes = numelOf(S) * 4;
    const x = blocked(B, S), x2 = blocked(B, S), dy = blocked(B, S);
    const ones = B.fromArray(new Float32Array(st.C).fill(1), [st.C]);
    const zeros = B.zeros([st.C], 'float32');
    const rm = B.zeros([st.C], 'float32'), rv = B.fromArray(new Float32Array(st.C).fill(1), [st.C]);
    for (const relu of [false, true]) {
      const p: BatchNormParams = { eps: 1e-5, momentum: 0.1, training: true, relu };
      const n = relu ? st.bnRelu : st.bn - st.bnRelu;
      const fwd = time(B, () => {
        const r = B.batchNorm2d(x, S, ones, zeros, rm, rv, p);
        return [r.y, ...r.saved.storages];
      });
      add(`bn${relu ? '+relu' : ''} train fwd [${S}]`, fwd, n, 0, gbs(2 * bytes, fwd));
      const r = B.batchNorm2d(x, S, ones, zeros, rm, rv, p);
      const bwd = time(B, () => {
        const g = B.batchNorm2dBackward(dy, x, S, ones, zeros, r.saved, p);
        return [g.dx, g.dgamma, g.dbeta];
      });
      add(`bn${relu ? '+relu' : ''} bwd [${S}]`, bwd, n, 0, gbs(3 * bytes, bwd));
      const pe: BatchNormParams = { ...p, training: false };
      const inf = time(B, () => {
        const q = B.batchNorm2d(x, S, ones, zeros, rm, rv, pe);
        return [q.y, ...q.saved.storages];
      });
      add(`bn${relu ? '+relu' : ''} eval fwd [${S}]`, inf, 0, n, gbs(2 * bytes, inf));
      for (const s of [r.y, ...r.saved.storages]) B.dispose(s);
    }
    const ar = time(B, () => [B.addRelu(x, x2, S)]);
    add(`addRelu [${S}]`, ar, st.adds, st.adds, gbs(3 * bytes, ar));
    const rb = time(B, () => [B.reluBackward(dy, x, S)]);
    add(`reluBackward [${S}]`, rb, st.adds, 0, gbs(3 * bytes, rb));
    const acc = B.scale(x, 0, S); // a gradient accumulator in the activations' (blocked) layout
    const ai = time(B, () => (B.addInPlace(acc, dy, S), []));
    add(`addInPlace [${S}]`, ai, st.adds / 2, 0, gbs(3 * bytes, ai));
    for (const s of [x, x2, dy, ones, zeros, rm, rv, acc]) B.dispose(s);
  }
}

function benchHead(B: Backend): void {
  const S = [N, 512, 4, 4];
  const x = blocked(B, S);
  const pp = { kernel: [4, 4] as const, stride: [4, 4] as const, padding: [0, 0] as const };
  const pf = time(B, () => [B.avgPool2d(x, S, pp)]);
  add(`avgPool 4x4 [${S}]`, pf, 1, 1, gbs(numelOf(S) * 4, pf));
  const dyp = B.fromArray(rand([N, 512, 1, 1]), [N, 512, 1, 1]);
  const pb = time(B, () => [B.avgPool2dBackward(dyp, S, pp)]);
  add(`avgPool bwd [${S}]`, pb, 1, 0, gbs(numelOf(S) * 4, pb));
  const f = B.fromArray(rand([N, 512]), [N, 512]);
  const w = B.fromArray(rand([10, 512], 0.05), [10, 512]);
  const b = B.zeros([10], 'float32');
  const lf = time(B, () => [B.linear(f, [N, 512], w, [10, 512], b)]);
  add('linear 512->10 fwd', lf, 1, 1, gflops(2 * N * 512 * 10, lf));
  const dl = B.fromArray(rand([N, 10]), [N, 10]);
  const lb = time(B, () => {
    const g = B.linearBackward(dl, f, [N, 512], w, [10, 512], true);
    return [g.dx, g.dw, g.db as Storage];
  });
  add('linear 512->10 bwd', lb, 1, 0, gflops(4 * N * 512 * 10, lb));
  const t = Int32Array.from({ length: N }, (_, i) => i % 10);
  const ce = time(B, () => {
    const r = B.crossEntropy(dl, [N, 10], t, 0.1);
    return [r.probs, B.crossEntropyBackward(r.probs, [N, 10], t, 0.1, 1)];
  });
  add('crossEntropy fwd+bwd', ce, 1, 0, '-');
  for (const s of [x, dyp, f, w, b, dl]) B.dispose(s);
}

function benchSgd(B: Backend): void {
  const S = [512, 512, 3, 3];
  const total = 11_173_962; // ResNet-18/CIFAR parameters
  const w = B.fromArray(rand(S), S), g = B.fromArray(rand(S), S), m = B.zeros(S, 'float32');
  const p = { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov: false };
  const ms = time(B, () => (B.sgdStep(w, g, m, S, p, false), []));
  add(`sgd momentum+wd [${S}] (scaled to all params)`, ms * (total / numelOf(S)), 1, 0, gbs(5 * numelOf(S) * 4, ms));
  for (const s of [w, g, m]) B.dispose(s);
}

function main(): void {
  const a = nativeAvailable();
  if (!a.ok) {
    console.error(`bench/kernels: ${a.reason}`);
    process.exit(1);
  }
  const B = createNativeBackend();
  console.log(`${B.describe()}; batch ${N}; median of ${REPS} after a warm-up; ${CPU_CLOCK ? 'CPU' : 'wall'} time`);
  benchConvs(B);
  benchMemoryBound(B);
  benchHead(B);
  benchSgd(B);
  const step = rows.reduce((s, r) => s + r.ms * r.perStep, 0);
  const infer = rows.reduce((s, r) => s + r.ms * r.perInfer, 0);
  const convStep = rows.filter((r) => r.name.startsWith('conv')).reduce((s, r) => s + r.ms * r.perStep, 0);
  console.log(`\nestimated training step: ${step.toFixed(0)} ms (${((N * 1000) / step).toFixed(1)} img/s); convolutions ${convStep.toFixed(0)} ms`);
  console.log(`estimated inference pass: ${infer.toFixed(0)} ms (${((N * 1000) / infer).toFixed(1)} img/s)`);
}

main();
