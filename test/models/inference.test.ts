/**
 * The folded inference graph (src/models/inference.ts) against the eval-mode model it is built from, and against
 * PyTorch's eval-mode logits of the golden fixture (test/fixtures/golden/README.md): batch norm folded into the
 * convolutions, residual add and ReLU fused into them, weights frozen. fp32: 1e-4 relative to the largest logit, on
 * both backends and under the default (benchmark) and deterministic convolution policies; bf16 (where the CPU has
 * it): within 3e-2 of the unfused bf16 model. A frozen weight refuses to be written. The 2-image graph runs
 * before the 32-image one on purpose: oneDNN's Winograd weight layout depends on the batch size, and a reorder
 * cached by dims alone served the second graph the first one's layout (logits off by 1e3 before native/context.cc's
 * mdKey named the Winograd layout's fields). The whole-graph decision of the benchmark policy is saved in the
 * convolution cache file and taken by the next process (a child process each).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { backendByName, nativeUnavailableReason } from '../../src/backend';
import { nativeLayoutOf } from '../../src/backend/native';
import type { Backend, Storage } from '../../src/backend/backend';
import { readSafetensorsFile } from '../../src/interop/safetensors';
import { InferenceGraph } from '../../src/models/inference';
import { resnet18 } from '../../src/models/resnet';
import { Tensor, noGrad, tidy } from '../../src/tensor';
import { fixtureInput, fixtureStateDict, goldenFixturePath } from '../helpers/fixture-values';
import { relErrorToMax } from '../helpers/close';

const pytorchEval = readSafetensorsFile(goldenFixturePath()).tensors.get('eval.logits')?.data as Float32Array;
const batch32 = readSafetensorsFile(goldenFixturePath('resnet18_bf16.safetensors')).tensors.get('input');

function unfused(be: Backend, x: Float32Array, shape: number[]): Float32Array {
  const m = resnet18({ backend: be });
  m.loadStateDict(fixtureStateDict());
  m.eval();
  const out = noGrad(() => tidy(() => m.forward(Tensor.fromArray(x, shape, be)).toArray())) as Float32Array;
  m.dispose();
  return out;
}

function fused(be: Backend, x: Float32Array, shape: number[]): Float32Array {
  const g = InferenceGraph.fromStateDict(fixtureStateDict(), be);
  try {
    return g.forward(x, shape);
  } finally {
    g.dispose();
  }
}

/** A child process: the whole-graph check's logits of 5 images and the number of checks it made, as JSON. */
const GRAPH_SCRIPT = `
const path = require('node:path');
const mod = (m) => require(path.join(process.env.MODULES, m));
const { InferenceGraph } = mod('src/models/inference');
const { backendByName } = mod('src/backend');
const { fixtureStateDict } = mod('test/helpers/fixture-values');
const x = Float32Array.from({ length: 5 * 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.731) * 1.5);
const g = InferenceGraph.fromStateDict(fixtureStateDict(), backendByName('native'));
const logits = Array.from(g.forward(x, [5, 3, 32, 32]));
console.log(JSON.stringify({ checks: g.wholeGraphChecks().length, logits }));
`;

/** Deterministic values in [-0.5, 0.5] for test tensors, a different series per seed. */
const rng = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 1000 + i * 12.9898) * 0.5);

/** A 3x3, stride-1, padding-1 convolution of C channels to C over `shape` [N,C,H,W]: input, weights, bias and a host residual. */
function conv3x3Case(be: Backend, shape: number[]) {
  const C = shape[1];
  const n = shape.reduce((a, b) => a * b);
  const wShape = [C, C, 3, 3];
  return {
    x: be.fromArray(rng(n, 1), shape), w: be.fromArray(rng(C * C * 9, 2), wShape), wShape, b: be.fromArray(rng(C, 3), [C]),
    r: rng(n, 4), p: { stride: [1, 1] as [number, number], padding: [1, 1] as [number, number] },
  };
}

const native = nativeUnavailableReason();
const skipNative = native && process.env.RESNET_REQUIRE_NATIVE !== '1' ? `native backend unavailable: ${native}` : false;
const x2 = fixtureInput();
const inputs: Array<[string, Float32Array, number[]]> = [
  ['the golden batch (2 images)', x2.data as Float32Array, [...x2.shape]],
  ['32 images', batch32?.data as Float32Array, [...(batch32?.shape ?? [])]],
];

describe('inference graph: folded batch norm, fused residual add and ReLU', () => {
  test('reference backend: the eval-mode model\'s logits at 1e-4, and PyTorch\'s', () => {
    const be = backendByName('reference');
    const [, x, shape] = inputs[0];
    const f = fused(be, x, shape);
    assert.ok(relErrorToMax(f, unfused(be, x, shape)) <= 1e-4);
    assert.ok(relErrorToMax(f, pytorchEval) <= 1e-4, `against PyTorch: ${relErrorToMax(f, pytorchEval)}`);
  });

  for (const policy of ['benchmark', 'deterministic'] as const) {
    test(`native backend, ${policy} convolutions: the eval-mode model's logits at 1e-4, and PyTorch's`, { skip: skipNative }, () => {
      const nat = require('../../src/backend/native') as typeof import('../../src/backend/native');
      const before = nat.convChoices().policy as typeof policy;
      nat.setConvPolicy(policy);
      try {
        const be = backendByName('native');
        for (const [what, x, shape] of inputs) {
          const err = relErrorToMax(fused(be, x, shape), unfused(be, x, shape));
          assert.ok(err <= 1e-4, `${what}: relative error ${err.toExponential(3)} > 1e-4`);
        }
        const e = relErrorToMax(fused(be, inputs[0][1], inputs[0][2]), pytorchEval);
        assert.ok(e <= 1e-4, `against PyTorch: ${e.toExponential(3)}`);
      } finally {
        nat.setConvPolicy(before);
      }
    });
  }

  const bf16Skip = (): string | false => skipNative || (backendByName('native').bf16Unavailable() ?? false);
  test('native backend, bf16: within 3e-2 of the unfused bf16 model', { skip: bf16Skip() }, () => {
    const be = backendByName('native');
    be.setPrecision('bf16');
    try {
      const [, x, shape] = inputs[1];
      const err = relErrorToMax(fused(be, x, shape), unfused(be, x, shape));
      assert.ok(err <= 3e-2, `relative error ${err.toExponential(3)} > 3e-2`);
    } finally {
      be.setPrecision('fp32');
    }
  });

  test('native backend, bf16: a chained convolution output is stored in bf16 and reads back like the float32 one', { skip: bf16Skip() }, () => {
    const be = backendByName('native');
    const shape = [2, 16, 8, 8];
    const { x, w, wShape, b, p } = conv3x3Case(be, shape);
    const nat = require('../../src/backend/native') as typeof import('../../src/backend/native');
    const before = nat.convChoices().policy as 'benchmark';
    be.setPrecision('bf16');
    nat.setConvPolicy('direct'); // the bf16 kernel: under benchmark, oneDNN's Winograd in f32 may win this shape
    try {
      const chained = be.conv2dInfer(x, shape, w, wShape, b, p, null, true, { chained: true });
      const plain = be.conv2dInfer(x, shape, w, wShape, b, p, null, true);
      assert.match(nativeLayoutOf(chained), /^bf16 /, 'chained: bf16');
      assert.doesNotMatch(nativeLayoutOf(plain), /bf16/, 'not chained: float32');
      // the next convolution, fed the bf16 activation as input and as residual, against the float32 one
      const next = (h: Storage) => be.toArray(be.conv2dInfer(h, shape, w, wShape, b, p, h, true), shape) as Float32Array;
      const a = next(chained), c = next(plain);
      const err = relErrorToMax(a, c);
      // the activations differ by bf16 rounding (8 bits of mantissa): 2^-8 of their size at most
      assert.ok(err > 0 && err <= 2 ** -8, `relative difference ${err.toExponential(3)}`);
      be.setPrecision('fp32');
      assert.doesNotMatch(nativeLayoutOf(be.conv2dInfer(x, shape, w, wShape, b, p, null, true, { chained: true })), /bf16/, 'fp32: chained stays float32');
    } finally {
      be.setPrecision('fp32');
      nat.setConvPolicy(before);
    }
  });

  test('native backend, bf16: oneDNN\'s Winograd runs in f32 (it has no bf16 form), closer to the fp32 convolution than the bf16 kernel', { skip: bf16Skip() }, () => {
    const be = backendByName('native');
    const nat = require('../../src/backend/native') as typeof import('../../src/backend/native');
    const before = nat.convChoices().policy as 'benchmark';
    const shape = [4, 64, 8, 8];
    const { x, w, wShape, b, r, p } = conv3x3Case(be, shape);
    const run = (precision: 'fp32' | 'bf16', policy: 'direct' | 'onednn-winograd') => {
      be.setPrecision(precision);
      nat.setConvPolicy(policy);
      const y = be.conv2dInfer(x, shape, w, wShape, b, p, be.fromArray(r, shape), true, { chained: true, consumeResidual: true });
      const layout = nativeLayoutOf(y);
      return { y: be.toArray(y, shape) as Float32Array, layout };
    };
    try {
      const exact = run('fp32', 'direct').y;
      const bf16 = run('bf16', 'direct');
      const wino = run('bf16', 'onednn-winograd');
      assert.match(bf16.layout, /^bf16 /);
      // where oneDNN has a Winograd on this CPU (AVX-512) it ran, in f32; elsewhere the policy falls back to direct
      const ran = !/^bf16 /.test(wino.layout);
      const errBf16 = relErrorToMax(bf16.y, exact), errWino = relErrorToMax(wino.y, exact);
      assert.ok(errBf16 > 1e-4 && errBf16 <= 3e-2, `bf16 kernel: ${errBf16.toExponential(3)}`);
      if (ran) assert.ok(errWino <= 1e-4, `f32 Winograd under bf16: ${errWino.toExponential(3)}`);
      else assert.deepEqual(wino.y, bf16.y);
    } finally {
      be.setPrecision('fp32');
      nat.setConvPolicy(before);
    }
  });

  test('native backend: oneDNN direct on channel-blocked activations (direct-blocked) gives direct\'s numbers, in fp32 and bf16', { skip: skipNative }, () => {
    const be = backendByName('native');
    const nat = require('../../src/backend/native') as typeof import('../../src/backend/native');
    const before = nat.convChoices().policy as 'benchmark';
    const shape = [8, 64, 4, 4];
    const { x, w, wShape, b, r, p } = conv3x3Case(be, shape);
    const run = (policy: 'direct' | 'direct-blocked') => {
      nat.setConvPolicy(policy);
      const y = be.conv2dInfer(x, shape, w, wShape, b, p, be.fromArray(r, shape), true, { chained: true });
      // read back through the next layer too, so that a wrongly described layout would show
      const z = be.conv2dInfer(y, shape, w, wShape, b, p, null, false);
      return be.toArray(z, shape) as Float32Array;
    };
    try {
      const precisions: Array<'fp32' | 'bf16'> = bf16Skip() === false ? ['fp32', 'bf16'] : ['fp32'];
      for (const precision of precisions) {
        be.setPrecision(precision);
        const err = relErrorToMax(run('direct-blocked'), run('direct'));
        assert.ok(err <= (precision === 'fp32' ? 1e-5 : 2e-2), `${precision}: relative difference ${err.toExponential(3)}`);
      }
    } finally {
      be.setPrecision('fp32');
      nat.setConvPolicy(before);
    }
  });

  test('native backend: our matrix-product kernel for small maps (ours-gemm) gives the reference backend\'s numbers, residual in place included', { skip: skipNative }, () => {
    const be = backendByName('native');
    const ref = backendByName('reference');
    const nat = require('../../src/backend/native') as typeof import('../../src/backend/native');
    const before = nat.convChoices().policy as 'benchmark';
    // the last stage's block, its strided entry and shortcut at batch 1, a batch of 3 (pixels of several images in
    // one tile), and 20 pixels on a 5x4 map (a partial tile)
    const cases: Array<{ x: number[]; k: number; f: number; stride: number; pad: number; residual: boolean; relu: boolean }> = [
      { x: [1, 512, 4, 4], k: 512, f: 3, stride: 1, pad: 1, residual: true, relu: true },
      { x: [1, 256, 8, 8], k: 512, f: 3, stride: 2, pad: 1, residual: false, relu: true },
      { x: [1, 256, 8, 8], k: 512, f: 1, stride: 2, pad: 0, residual: false, relu: false },
      { x: [3, 64, 4, 4], k: 32, f: 3, stride: 1, pad: 1, residual: true, relu: true },
      { x: [1, 16, 5, 4], k: 48, f: 3, stride: 1, pad: 1, residual: true, relu: false },
    ];
    try {
      for (const c of cases) {
        const [N, C, H, W] = c.x;
        const P = Math.floor((H + 2 * c.pad - c.f) / c.stride) + 1, Q = Math.floor((W + 2 * c.pad - c.f) / c.stride) + 1;
        const yShape = [N, c.k, P, Q], wShape = [c.k, C, c.f, c.f];
        const xs = rng(N * C * H * W, 11), ws = rng(c.k * C * c.f * c.f, 12).map((v) => v / Math.sqrt(C * c.f * c.f));
        const bs = rng(c.k, 13), rs = rng(N * c.k * P * Q, 14);
        const p = { stride: [c.stride, c.stride] as [number, number], padding: [c.pad, c.pad] as [number, number] };
        const eye = new Float32Array(c.k * c.k).map((_, i) => (i % (c.k + 1) === 0 ? 1 : 0));
        const run = (b: Backend, consume: boolean) => {
          const w = b.fromArray(ws, wShape);
          // consumed, the residual is made by a 1x1 identity convolution, so that it has the output's layout
          // (NHWC) and the kernel writes into its buffer, reading the residual from there
          const r = !c.residual ? null : !consume ? b.fromArray(rs, yShape)
            : b.conv2dInfer(b.fromArray(rs, yShape), yShape, b.fromArray(eye, [c.k, c.k, 1, 1]), [c.k, c.k, 1, 1],
              b.fromArray(new Float32Array(c.k), [c.k]), { stride: [1, 1], padding: [0, 0] }, null, false);
          const y = b.conv2dInfer(b.fromArray(xs, c.x), c.x, w, wShape, b.fromArray(bs, [c.k]), p, r, c.relu, { consumeResidual: consume && r !== null });
          return b.toArray(y, yShape) as Float32Array;
        };
        const expected = run(ref, false);
        nat.setConvPolicy('ours-gemm');
        nat.setNativeProfiling(true);
        nat.resetNativeProfile();
        for (const consume of [false, true]) {
          const got = run(be, consume);
          const err = relErrorToMax(got, expected);
          assert.ok(err <= 1e-5, `${JSON.stringify(c)} consume=${consume}: relative error ${err.toExponential(3)}`);
        }
        // the kernel ran (the policy falls back to oneDNN direct where it does not apply)
        assert.equal(nat.nativeProfile()['(gemm conv)']?.calls, c.residual ? 3 : 2, JSON.stringify(c));
        nat.setNativeProfiling(false);
        nat.setConvPolicy(before);
      }
    } finally {
      nat.setNativeProfiling(false);
      nat.setConvPolicy(before);
    }
  });

  test('native backend, benchmark policy: a small batch checks the per-layer choices once as a whole, and either way gives the same logits', { skip: skipNative }, () => {
    const nat = require('../../src/backend/native') as typeof import('../../src/backend/native');
    const before = nat.convChoices().policy as 'benchmark';
    const be = backendByName('native');
    // 3 of the 32 images: a batch size no other test of this process runs, so that this graph makes the check
    const shape = [3, ...inputs[1][2].slice(1)];
    const x = inputs[1][1].subarray(0, 3 * 3 * 32 * 32);
    const g = InferenceGraph.fromStateDict(fixtureStateDict(), be);
    // a cache file of its own: the machine's may hold the decision from an earlier run, and then no check is made
    const beforeFile = nat.convChoices().cacheFile;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'resnet-graph-'));
    try {
      nat.setConvCacheFile(path.join(dir, 'conv-choices.tsv'));
      nat.setConvPolicy('benchmark');
      const first = g.forward(x, shape);
      g.forward(x, shape);
      const checks = g.wholeGraphChecks();
      assert.equal(checks.length, 1, 'one check for batch 3, not one per call');
      assert.equal(checks[0].batch, 3);
      assert.ok(checks[0].chosenMs > 0 && checks[0].directMs > 0);
      assert.ok(relErrorToMax(first, unfused(be, x, shape)) <= 1e-4);
      g.forward(inputs[1][1], inputs[1][2]);
      assert.equal(g.wholeGraphChecks().length, 1, '32 images: over the check\'s batch limit');
      // a second graph of the same network takes the process's decision: no check, bit-identical logits
      const twin = InferenceGraph.fromStateDict(fixtureStateDict(), be);
      assert.deepEqual(twin.forward(x, shape), first);
      assert.equal(twin.wholeGraphChecks().length, 0);
      twin.dispose();
      nat.setConvPolicy('deterministic');
      const other = InferenceGraph.fromStateDict(fixtureStateDict(), be);
      other.forward(x, shape);
      assert.equal(other.wholeGraphChecks().length, 0, 'deterministic: nothing timed, nothing to check');
      other.dispose();
    } finally {
      nat.setConvPolicy(before);
      nat.setConvCacheFile(beforeFile);
      fs.rmSync(dir, { recursive: true, force: true });
      g.dispose();
    }
  });

  test('native backend, benchmark policy: the whole-graph decision is saved in the cache file, so that another process takes it', { skip: skipNative }, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'resnet-graph-'));
    try {
      const script = path.join(dir, 'graph.js');
      fs.writeFileSync(script, GRAPH_SCRIPT);
      const cache = path.join(dir, 'conv-choices.tsv');
      const run = (env: Record<string, string>) => {
        const r = spawnSync(process.execPath, [...(__filename.endsWith('.ts') ? process.execArgv : []), script], {
          encoding: 'utf8', env: { ...process.env, MODULES: path.resolve(__dirname, '..', '..'), RESNET_CONV_CACHE: cache, ...env }, timeout: 120_000,
        });
        assert.equal(r.status, 0, r.stderr);
        return JSON.parse(r.stdout.trim()) as { checks: number; logits: number[] };
      };
      const first = run({});
      assert.equal(first.checks, 1, 'the first process times the check');
      const lines = fs.readFileSync(cache, 'utf8').split('\n').filter((l) => l.startsWith('graph|'));
      assert.equal(lines.length, 1, 'one decision saved');
      assert.match(lines[0], /^graph\|native\|fp32\|5,3,32,32\|64x3x3x3s1;.*\t(direct|chosen)$/);
      const second = run({});
      assert.equal(second.checks, 0, 'the second process reads the decision');
      assert.deepEqual(second.logits, first.logits);
      // a saved "direct" is followed: the logits of oneDNN direct in every layer, bit for bit. (The stem keeps our
      // small-channel kernel in direct mode where its choice says so, and cold timing can pick it: the choice is
      // set to direct here too, so that the comparison is with oneDNN direct everywhere.)
      fs.writeFileSync(cache, fs.readFileSync(cache, 'utf8').replace(/^(graph\|.*)\t(direct|chosen)$/m, '$1\tdirect')
        .replace(/\tours-direct$/gm, '\tdirect'));
      const forced = run({});
      assert.equal(forced.checks, 0);
      assert.deepEqual(forced.logits, run({ RESNET_CONV_ALGO: 'direct', RESNET_CONV_CACHE: 'off' }).logits);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('native backend: a frozen weight keeps one reordered copy per layout, so alternating algorithms do not reorder it again', { skip: skipNative }, () => {
    const nat = require('../../src/backend/native') as typeof import('../../src/backend/native');
    const before = nat.convChoices().policy as 'benchmark';
    const be = backendByName('native');
    const shape = [2, 32, 8, 8];
    const { x, w, wShape, b, p } = conv3x3Case(be, shape);
    be.freeze(w);
    const reorders = (f: () => void): number => {
      nat.resetNativeProfile();
      nat.setNativeProfiling(true);
      try {
        f();
      } finally {
        nat.setNativeProfiling(false);
      }
      return nat.nativeProfile()['(reorder)']?.calls ?? 0;
    };
    try {
      nat.setConvPolicy('onednn-winograd');
      const run = (direct: boolean) => be.dispose(be.conv2dInfer(x, shape, w, wShape, b, p, null, true, { direct }));
      run(false);
      run(true);
      const alone = reorders(() => run(true));
      const alternating = reorders(() => { run(false); run(true); run(false); run(true); });
      // the input's reorder into each algorithm's layout only (as many per call as alone), none of the weights
      assert.ok(alone >= 1 && alternating <= 4 * alone, `${alternating} reorders in 4 alternating calls, ${alone} in one`);
    } finally {
      nat.setConvPolicy(before);
      for (const t of [x, w, b]) be.dispose(t);
    }
  });

  for (const name of ['reference', 'native'] as const) {
    test(`${name} backend: a consumed residual gives the same result, is disposed, and leaves no extra tensor`, { skip: name === 'native' ? skipNative : false }, () => {
      const be = backendByName(name);
      const shape = [2, 16, 6, 6];
      const { x, w, wShape, b, p } = conv3x3Case(be, shape);
      // residuals in the layout the convolution writes (a conv2dInfer output), as in the graph
      const residual = () => be.conv2dInfer(x, shape, w, wShape, b, p, null, false);
      const kept = residual();
      const want = be.toArray(be.conv2dInfer(x, shape, w, wShape, b, p, kept, true), shape) as Float32Array;
      const r = residual();
      const live = name === 'native' ? (require('../../src/backend/native') as typeof import('../../src/backend/native')).nativeMemoryStats().liveTensors : 0;
      const y = be.conv2dInfer(x, shape, w, wShape, b, p, r, true, { consumeResidual: true });
      if (name === 'native') {
        const after = (require('../../src/backend/native') as typeof import('../../src/backend/native')).nativeMemoryStats().liveTensors;
        assert.equal(after, live, 'the result took the residual\'s buffer: no new tensor');
      }
      assert.deepEqual(be.toArray(y, shape), want);
      assert.throws(() => be.toArray(r, shape), /dispos/);
      assert.throws(() => be.conv2dInfer(x, shape, w, wShape, b, p, x, true, { consumeResidual: true }), /cannot also be the input/);
      for (const t of [x, w, b, kept, y]) be.dispose(t);
    });
  }

  test('a frozen weight cannot be updated in place', { skip: skipNative }, () => {
    const be = backendByName('native');
    const w = be.fromArray(new Float32Array([1, 2, 3]), [3]);
    const g = be.fromArray(new Float32Array([1, 1, 1]), [3]);
    be.freeze(w);
    assert.throws(() => be.sgdStep(w, g, null, [3], { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false }, true), /frozen/);
    be.dispose(w);
    be.dispose(g);
  });
});
