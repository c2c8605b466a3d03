/**
 * Parity of every registered backend but the reference one against the reference backend (the oracle), kernel by
 * kernel, on random float32 inputs: odd channel counts (3, 5, 7) and multiples of 16, odd spatial sizes, batch 1,
 * stride 2, 1x1 convolutions, with and without bias; BatchNorm in training and eval, with and without the fused
 * ReLU, including the running-statistic updates; pooling, linear, the softmax family, cross-entropy with label
 * smoothing, and SGD with every option. A backend gets this whole suite by registering (src/backend/index.ts);
 * the native (oneDNN) one runs its convolutions under every policy, and keeps tests of its own at the end (the
 * addon, the Winograd and benchmark policies). Inputs that come out of native kernels are in oneDNN's blocked
 * layouts, so kernels are also fed blocked inputs (see `chain`).
 *
 * Tolerance: each comparison is scale-aware, |backend - reference| <= tol · max|reference| (fp32 sums in a
 * different order than the reference); tol is stated per op below.
 * Skips a backend (with the reason) when it is unavailable; the native one, unless RESNET_REQUIRE_NATIVE=1, where
 * it fails.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend, BatchNormParams, Conv2dParams, Pool2dParams, SgdParams, Shape, Storage } from '../../src/backend/backend';
import { convOutputShape, numelOf, poolOutputShape } from '../../src/backend/backend';
import { backendByName, backendUnavailableReason, registeredBackends } from '../../src/backend';
import {
  type ConvPolicy, convChoices, nativeAvailable, nativeLayoutOf, nativeProfile, resetNativeProfile,
  setConvPolicy, setNativeProfiling,
} from '../../src/backend/native';
import { createReferenceBackend } from '../../src/backend/reference';
import { Rng } from '../../src/util/rng';
import { expectClose } from '../helpers/close';

const avail = nativeAvailable();
const REQUIRED = process.env.RESNET_REQUIRE_NATIVE === '1';
const SKIP = avail.ok || REQUIRED ? false : `native addon unavailable: ${avail.ok ? '' : avail.reason}`;

// tolerances relative to the largest reference magnitude
const TOL = {
  exact: 1e-6, // elementwise, pooling, reshapes: the same float32 operations
  // sums of up to C·R·S (forward), K·R·S (backward data) or N·P·Q (backward weights) products; the Winograd
  // F(4x4,3x3) policies' transforms cost a few more bits (measured <= 8e-6 at 64 channels)
  conv: 2e-5,
  bn: 3e-5, // batch statistics over N·H·W, then a second reduction in backward
  linear: 2e-5,
  softmax: 1e-5,
};

type Out = Record<string, [Storage, Shape]>;
type Maker = (a: Float32Array, shape: Shape) => Storage;

/** Runs `fn` on a backend with fresh input storages; reads and disposes every output and input. */
function runOn(B: Backend, fn: (B: Backend, mk: Maker) => Out): Record<string, Float32Array> {
  const made: Storage[] = [];
  const mk: Maker = (a, shape) => {
    const s = B.fromArray(a, shape);
    made.push(s);
    return s;
  };
  const out = fn(B, mk);
  const res: Record<string, Float32Array> = {};
  for (const [k, [s, shape]] of Object.entries(out)) {
    res[k] = B.toArray(s, shape) as Float32Array;
    if (!made.includes(s)) B.dispose(s);
  }
  for (const s of made) B.dispose(s);
  return res;
}

const ref = createReferenceBackend();
const native = (): Backend => backendByName('native');

/** Runs fn under a convolution policy of the native backend, then restores the one in force before; null: just fn. */
function withPolicy<T>(policy: ConvPolicy | null, fn: () => T): T {
  if (policy === null) return fn();
  const before = convChoices().policy as ConvPolicy;
  setConvPolicy(policy);
  try {
    return fn();
  } finally {
    setConvPolicy(before);
  }
}

/** Compares every output of `fn` on backend `B` and on the reference within tol · max|reference|. */
function parityOn(B: Backend, what: string, tol: number, fn: (B: Backend, mk: Maker) => Out): void {
  const n = runOn(B, fn);
  const r = runOn(ref, fn);
  for (const k of Object.keys(r)) {
    let m = 0;
    for (const v of r[k]) m = Math.max(m, Math.abs(v));
    assert.ok(m > 0 || k.startsWith('d'), `${what}/${k}: reference output is all zeros; the case tests nothing`);
    expectClose(n[k], r[k], { atol: tol * (m || 1), rtol: 0 }, `${what}/${k}`);
  }
}

function rand(rng: Rng, shape: Shape, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(numelOf(shape));
  for (let i = 0; i < a.length; i++) a[i] = rng.uniformRange(lo, hi);
  return a;
}

const conv = (s: number, p: number): Conv2dParams => ({ stride: [s, s], padding: [p, p] });

/** A backend under test: its name, why it is skipped (or false), and parity against the reference on it. */
interface Target {
  name: string;
  skip: string | false;
  backend: () => Backend;
  parity: (what: string, tol: number, fn: (B: Backend, mk: Maker) => Out) => void;
}

/** Every registered backend but the oracle. */
function targets(): Target[] {
  return registeredBackends().filter((name) => name !== 'reference').map((name) => {
    const reason = backendUnavailableReason(name);
    const required = name === 'native' && REQUIRED;
    const backend = () => backendByName(name);
    return {
      name, backend, skip: reason === null || required ? false : `${name} backend unavailable: ${reason}`,
      parity: (what, tol, fn) => parityOn(backend(), what, tol, fn),
    };
  });
}

function convSuite(tg: Target): void {
  const convCases: Array<{ x: Shape; w: Shape; p: Conv2dParams; bias: boolean; name: string }> = [
    { name: 'first layer 3->16 3x3 s1, bias', x: [2, 3, 8, 8], w: [16, 3, 3, 3], p: conv(1, 1), bias: true },
    { name: 'batch 1, 5->7 3x3 s2 odd 7x7', x: [1, 5, 7, 7], w: [7, 5, 3, 3], p: conv(2, 1), bias: false },
    { name: '1x1 s2 shortcut 16->32 on 9x9', x: [2, 16, 9, 9], w: [32, 16, 1, 1], p: conv(2, 0), bias: false },
    { name: '1x1 s2 shortcut 16->32 on 8x8', x: [2, 16, 8, 8], w: [32, 16, 1, 1], p: conv(2, 0), bias: true },
    { name: '32->16 3x3 s1 6x6, bias', x: [3, 32, 6, 6], w: [16, 32, 3, 3], p: conv(1, 1), bias: true },
    { name: '7->5 3x3 s2 p0 5x6', x: [2, 7, 5, 6], w: [5, 7, 3, 3], p: conv(2, 0), bias: true },
    { name: '16->16 5x5 s1 p2', x: [2, 16, 6, 6], w: [16, 16, 5, 5], p: conv(1, 2), bias: false },
    // 3x3 stride 1 with >= 16 channels: the Winograd kernels (partial tiles, padding 0/1/2, padded channel lanes)
    { name: 'winograd 16->32 on 9x9 (partial tiles)', x: [2, 16, 9, 9], w: [32, 16, 3, 3], p: conv(1, 1), bias: false },
    { name: 'winograd batch 1, 20->24 on 7x5, bias', x: [1, 20, 7, 5], w: [24, 20, 3, 3], p: conv(1, 1), bias: true },
    { name: 'winograd 16->16 pad 0 on 10x10', x: [2, 16, 10, 10], w: [16, 16, 3, 3], p: conv(1, 0), bias: false },
    { name: 'winograd 16->16 pad 2 on 6x6', x: [2, 16, 6, 6], w: [16, 16, 3, 3], p: conv(1, 2), bias: true },
    { name: 'winograd 64->64 on 16x16', x: [2, 64, 16, 16], w: [64, 64, 3, 3], p: conv(1, 1), bias: false },
  ];
  // native: every policy, so each algorithm it can pick must be right on every case (where one does not apply
  // to a shape, the policy runs oneDNN direct there); any other backend: its own choice
  const policies: Array<ConvPolicy | null> = tg.name === 'native' ? ['deterministic', 'winograd', 'onednn-winograd', 'benchmark'] : [null];
  for (const policy of policies) {
    for (const c of convCases) {
      test(`conv2d forward/backward${policy ? ` (${policy})` : ''}: ${c.name}`, () => {
        const rng = new Rng(numelOf(c.x) + numelOf(c.w));
        const x = rand(rng, c.x);
        const w = rand(rng, c.w);
        const b = rand(rng, [c.w[0]]);
        const yShape = convOutputShape(c.x, c.w, c.p);
        const dy = rand(rng, yShape);
        withPolicy(policy, () => tg.parity(c.name, TOL.conv, (B, mk) => {
          const y = B.conv2d(mk(x, c.x), c.x, mk(w, c.w), c.w, c.bias ? mk(b, [c.w[0]]) : null, c.p);
          const dx = B.conv2dBackwardData(mk(dy, yShape), mk(w, c.w), c.x, c.w, c.p);
          const g = B.conv2dBackwardWeights(mk(dy, yShape), mk(x, c.x), c.x, c.w, c.p, c.bias);
          assert.equal(g.db === null, !c.bias);
          const out: Out = { y: [y, yShape], dx: [dx, c.x], dw: [g.dw, c.w] };
          if (g.db) out.db = [g.db, [c.w[0]]];
          return out;
        }));
      });
    }
  }
}

function batchNormSuite(tg: Target): void {
  const bnCases: Array<{ shape: Shape; name: string }> = [
    { name: '[2,16,5,5]', shape: [2, 16, 5, 5] },
    { name: 'batch 1, 7 channels [1,7,3,3]', shape: [1, 7, 3, 3] },
    { name: '[4,32,4,4]', shape: [4, 32, 4, 4] },
  ];
  for (const c of bnCases) {
    for (const training of [true, false]) {
      for (const relu of [false, true]) {
        test(`batchNorm2d ${training ? 'training' : 'eval'}${relu ? ' + relu' : ''} ${c.name}`, () => {
          const C = c.shape[1];
          const rng = new Rng(C * 7 + (training ? 1 : 0) + (relu ? 2 : 0));
          const x = rand(rng, c.shape, -2, 3);
          const dy = rand(rng, c.shape);
          const gamma = rand(rng, [C], 0.5, 1.5);
          const beta = rand(rng, [C], -0.5, 0.5);
          const rm = rand(rng, [C], -0.2, 0.2);
          const rv = rand(rng, [C], 0.5, 2);
          const p: BatchNormParams = { eps: 1e-5, momentum: 0.1, training, relu };
          tg.parity(`bn ${c.name}`, TOL.bn, (B, mk) => {
            const [g, be, m, v] = [mk(gamma, [C]), mk(beta, [C]), mk(rm, [C]), mk(rv, [C])];
            const xs = mk(x, c.shape);
            const { y, saved } = B.batchNorm2d(xs, c.shape, g, be, m, v, p);
            const r = B.batchNorm2dBackward(mk(dy, c.shape), xs, c.shape, g, be, saved, p);
            for (const s of saved.storages) B.dispose(s);
            return {
              y: [y, c.shape], runningMean: [m, [C]], runningVar: [v, [C]],
              dx: [r.dx, c.shape], dgamma: [r.dgamma, [C]], dbeta: [r.dbeta, [C]],
            };
          });
        });
      }
    }
  }

  test('running statistics follow PyTorch (momentum 0.1, unbiased variance) over two steps', () => {
    const shape = [3, 5, 2, 3];
    const rng = new Rng(11);
    const x = rand(rng, shape, -1, 4);
    const B = tg.backend();
    const rm = B.zeros([5], 'float32');
    const rv = B.fromArray(new Float32Array(5).fill(1), [5]);
    const g = B.fromArray(new Float32Array(5).fill(1), [5]);
    const b = B.zeros([5], 'float32');
    const xs = B.fromArray(x, shape);
    for (let step = 0; step < 2; step++) {
      const { y, saved } = B.batchNorm2d(xs, shape, g, b, rm, rv, { eps: 1e-5, momentum: 0.1, training: true, relu: false });
      B.dispose(y);
      for (const s of saved.storages) B.dispose(s);
    }
    // by hand: channel c's 18 values; batch mean mu, unbiased var s2; two updates from (0, 1)
    const eMean: number[] = [];
    const eVar: number[] = [];
    for (let c = 0; c < 5; c++) {
      const vals: number[] = [];
      for (let n = 0; n < 3; n++) for (let i = 0; i < 6; i++) vals.push(x[(n * 5 + c) * 6 + i]);
      const mu = vals.reduce((a, v) => a + v, 0) / vals.length;
      const s2 = vals.reduce((a, v) => a + (v - mu) ** 2, 0) / (vals.length - 1);
      eMean.push(0.9 * (0.9 * 0 + 0.1 * mu) + 0.1 * mu);
      eVar.push(0.9 * (0.9 * 1 + 0.1 * s2) + 0.1 * s2);
    }
    expectClose(B.toArray(rm, [5]), eMean, { atol: 1e-6, rtol: 1e-5 }, 'runningMean');
    expectClose(B.toArray(rv, [5]), eVar, { atol: 1e-6, rtol: 1e-5 }, 'runningVar');
    for (const s of [rm, rv, g, b, xs]) B.dispose(s);
  });
}

function eltwisePoolSuite(tg: Target): void {
  test('relu, addRelu, reluBackward, add, addInPlace, scale, sum on plain data', () => {
    const shape = [3, 5, 7];
    const rng = new Rng(5);
    const a = rand(rng, shape);
    const b = rand(rng, shape);
    const dy = rand(rng, shape);
    tg.parity('eltwise', TOL.exact, (B, mk) => {
      const y = B.addRelu(mk(a, shape), mk(b, shape), shape);
      const acc = mk(a, shape);
      B.addInPlace(acc, mk(b, shape), shape);
      const sum = B.sum(mk(a, shape), shape);
      return {
        relu: [B.relu(mk(a, shape), shape), shape], addRelu: [y, shape],
        dReluAdd: [B.reluBackward(mk(dy, shape), y, shape), shape],
        add: [B.add(mk(a, shape), mk(b, shape), shape), shape], addInPlace: [acc, shape],
        scale: [B.scale(mk(a, shape), -0.75, shape), shape], sum: [B.fromArray(Float32Array.of(sum), [1]), [1]],
      };
    });
  });

  test('reluBackward on a tensor big enough for the threaded vector loop: dy where y > 0, else 0 (NaN in dy masked too)', () => {
    // 2·16·33·33 = 34,848 elements, above the kernels' parallel threshold (2^15); the remainder lanes are exercised too
    const shape = [2, 16, 33, 33];
    const n = numelOf(shape);
    const rng = new Rng(11);
    const y = rand(rng, shape).map((v) => Math.max(0, v)); // a ReLU output: about half exact zeros
    const dy = rand(rng, shape);
    for (let i = 0; i < n; i += 97) dy[i] = NaN; // some where y = 0 (must give 0), some where y > 0 (must stay NaN)
    const expected = new Float32Array(n);
    for (let i = 0; i < n; i++) expected[i] = y[i] > 0 ? dy[i] : 0;
    const B = tg.backend();
    const dyS = B.fromArray(dy, shape);
    const yS = B.fromArray(y, shape);
    const s = B.reluBackward(dyS, yS, shape);
    const got = B.toArray(s, shape);
    for (const t of [s, dyS, yS]) B.dispose(t);
    let masked = 0, kept = 0;
    for (let i = 0; i < n; i++) {
      if (Number.isNaN(expected[i])) {
        assert.ok(Number.isNaN(got[i]), `element ${i}: y = ${y[i]} > 0 and dy NaN, got ${got[i]}`);
        kept++;
      } else {
        assert.equal(got[i], expected[i], `element ${i}: y = ${y[i]}, dy = ${dy[i]}`);
        if (Number.isNaN(dy[i])) masked++;
      }
    }
    assert.ok(masked > 50 && kept > 50, `the NaN cases were both exercised (masked ${masked}, kept ${kept})`);
  });

  const poolCases: Array<{ x: Shape; p: Pool2dParams; name: string }> = [
    { name: 'ResNet head 4x4/4 on [2,32,4,4]', x: [2, 32, 4, 4], p: { kernel: [4, 4], stride: [4, 4], padding: [0, 0] } },
    { name: '3x3/2 pad 1 on [1,5,7,7]', x: [1, 5, 7, 7], p: { kernel: [3, 3], stride: [2, 2], padding: [1, 1] } },
    { name: '2x2/2 on [2,3,6,5]', x: [2, 3, 6, 5], p: { kernel: [2, 2], stride: [2, 2], padding: [0, 0] } },
  ];
  for (const c of poolCases) {
    test(`avgPool2d forward/backward: ${c.name}`, () => {
      const rng = new Rng(numelOf(c.x));
      const x = rand(rng, c.x);
      const yShape = poolOutputShape(c.x, c.p);
      const dy = rand(rng, yShape);
      tg.parity(c.name, TOL.exact * 4, (B, mk) => ({
        y: [B.avgPool2d(mk(x, c.x), c.x, c.p), yShape],
        dx: [B.avgPool2dBackward(mk(dy, yShape), c.x, c.p), c.x],
      }));
    });
  }
}

function linearSoftmaxSuite(tg: Target): void {
  for (const bias of [true, false]) {
    test(`linear forward/backward ${bias ? 'with' : 'without'} bias`, () => {
      const rng = new Rng(bias ? 3 : 4);
      const [N, I, O] = [3, 20, 7];
      const x = rand(rng, [N, I]);
      const w = rand(rng, [O, I]);
      const b = rand(rng, [O]);
      const dy = rand(rng, [N, O]);
      tg.parity('linear', TOL.linear, (B, mk) => {
        const y = B.linear(mk(x, [N, I]), [N, I], mk(w, [O, I]), [O, I], bias ? mk(b, [O]) : null);
        const g = B.linearBackward(mk(dy, [N, O]), mk(x, [N, I]), [N, I], mk(w, [O, I]), [O, I], bias);
        const out: Out = { y: [y, [N, O]], dx: [g.dx, [N, I]], dw: [g.dw, [O, I]] };
        if (g.db) out.db = [g.db, [O]];
        return out;
      });
    });
  }

  // inference convolutions of few input channels (a stem): on native forced to our small-channel kernel, which
  // must have run (its profile entry), with bias, ReLU, strides, padding, K not a multiple of its 64-channel block,
  // and enough output rows (N·P >= 64) for its OpenMP split
  const stemCases: Array<{ x: Shape; w: Shape; p: Conv2dParams; relu: boolean; name: string }> = [
    { name: 'stem 3->64 3x3 s1 p1, ReLU, batch 1', x: [1, 3, 32, 32], w: [64, 3, 3, 3], p: conv(1, 1), relu: true },
    { name: '3->70 3x3 s2 p1 on 9x7 (a tail of 6 channels)', x: [2, 3, 9, 7], w: [70, 3, 3, 3], p: conv(2, 1), relu: false },
    { name: '1->16 5x5 s1 p2, 40 rows of 3 images, ReLU', x: [3, 1, 40, 6], w: [16, 1, 5, 5], p: conv(1, 2), relu: true },
    { name: '4->128 1x1 s1 p0', x: [2, 4, 5, 5], w: [128, 4, 1, 1], p: conv(1, 0), relu: false },
  ];
  for (const c of stemCases) {
    test(`conv2dInfer, few input channels: ${c.name}`, () => {
      const rng = new Rng(numelOf(c.w));
      const x = rand(rng, c.x);
      const w = rand(rng, c.w);
      const b = rand(rng, [c.w[0]]);
      const yShape = convOutputShape(c.x, c.w, c.p);
      if (tg.name === 'native') {
        resetNativeProfile();
        setNativeProfiling(true);
      }
      try {
        withPolicy(tg.name === 'native' ? 'ours-direct' : null, () => tg.parity(c.name, TOL.conv, (B, mk) => ({
          y: [B.conv2dInfer(mk(x, c.x), c.x, mk(w, c.w), c.w, mk(b, [c.w[0]]), c.p, null, c.relu), yShape],
        })));
      } finally {
        if (tg.name === 'native') setNativeProfiling(false);
      }
      if (tg.name === 'native') assert.equal(nativeProfile()['(small conv)']?.calls, 1, 'our small-channel kernel ran once');
    });
  }

  // the inference head: a global average pool, flatten and linear in one call; on a plain input, and on a
  // convolution's output (the backend's own layout, as in the inference graph), at a batch under and over 16
  for (const N of [2, 17]) {
    test(`poolLinearInfer (global pool + linear) at batch ${N}`, () => {
      const rng = new Rng(N);
      const [C, H, W, O] = [24, 4, 3, 7];
      const x = rand(rng, [N, C, H, W]);
      const cw = rand(rng, [C, C, 1, 1]);
      const w = rand(rng, [O, C]);
      const b = rand(rng, [O]);
      tg.parity('poolLinearInfer', TOL.linear, (B, mk) => {
        const xs = [N, C, H, W];
        const h = B.conv2d(mk(x, xs), xs, mk(cw, [C, C, 1, 1]), [C, C, 1, 1], null, conv(1, 0));
        return {
          plain: [B.poolLinearInfer(mk(x, xs), xs, mk(w, [O, C]), [O, C], mk(b, [O])), [N, O]],
          afterConv: [B.poolLinearInfer(h, xs, mk(w, [O, C]), [O, C], mk(b, [O])), [N, O]],
        };
      });
    });
  }

  test('softmax, logSoftmax and their backward', () => {
    const rng = new Rng(9);
    const shape = [4, 10];
    const x = rand(rng, shape, -6, 6);
    const dy = rand(rng, shape);
    tg.parity('softmax', TOL.softmax, (B, mk) => {
      const s = B.softmax(mk(x, shape), shape);
      const l = B.logSoftmax(mk(x, shape), shape);
      return {
        softmax: [s, shape], logSoftmax: [l, shape],
        dSoftmax: [B.softmaxBackward(mk(dy, shape), s, shape), shape],
        dLogSoftmax: [B.logSoftmaxBackward(mk(dy, shape), l, shape), shape],
      };
    });
  });

  for (const eps of [0, 0.1]) {
    test(`crossEntropy with label smoothing ${eps}`, () => {
      const rng = new Rng(21);
      const shape = [5, 10];
      const x = rand(rng, shape, -4, 4);
      const t = Int32Array.from([3, 0, 9, 3, 7]);
      tg.parity('crossEntropy', TOL.softmax, (B, mk) => {
        const { loss, probs } = B.crossEntropy(mk(x, shape), shape, t, eps);
        return {
          loss: [B.fromArray(Float32Array.of(loss), [1]), [1]], probs: [probs, shape],
          dlogits: [B.crossEntropyBackward(probs, shape, t, eps, 0.5), shape],
        };
      });
    });
  }
}

function sgdSuite(tg: Target): void {
  const sgdCases: Array<{ name: string; p: SgdParams }> = [
    { name: 'plain with weight decay', p: { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0.01, nesterov: false } },
    { name: 'momentum, dampening, weight decay', p: { lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 5e-4, nesterov: false } },
    { name: 'nesterov', p: { lr: 0.05, momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov: true } },
  ];
  for (const c of sgdCases) {
    test(`sgdStep over three steps: ${c.name}`, () => {
      const rng = new Rng(31);
      const shape = [4, 3, 3, 3];
      const w = rand(rng, shape);
      const grads = [rand(rng, shape), rand(rng, shape), rand(rng, shape)];
      tg.parity(`sgd ${c.name}`, TOL.exact * 4, (B, mk) => {
        const param = mk(w, shape);
        const buf = c.p.momentum ? B.zeros(shape, 'float32') : null;
        grads.forEach((g, i) => B.sgdStep(param, mk(g, shape), buf, shape, c.p, i === 0));
        const out: Out = { param: [param, shape] };
        if (buf) out.buf = [buf, shape];
        return out;
      });
    });
  }
}

function chainSuite(tg: Target): void {
  test('a residual block chain: blocked layouts flow through every kernel, forward and backward', () => {
    // x -> conv3x3 s2 -> bn+relu -> conv3x3 -> bn ; shortcut conv1x1 s2 -> bn ; addRelu -> avgPool -> linear -> CE
    const rng = new Rng(77);
    const xS = [2, 5, 9, 9];
    const [K, P] = [16, 5];
    const hS = [2, K, P, P];
    const w1S = [K, 5, 3, 3], w2S = [K, K, 3, 3], wsS = [K, 5, 1, 1], fcS = [10, K];
    const data = {
      x: rand(rng, xS), w1: rand(rng, w1S), w2: rand(rng, w2S, -0.3, 0.3), ws: rand(rng, wsS),
      fc: rand(rng, fcS), g: rand(rng, [K], 0.5, 1.5), b: rand(rng, [K], -0.3, 0.3),
    };
    const t = Int32Array.from([1, 8]);
    const bnP: BatchNormParams = { eps: 1e-5, momentum: 0.1, training: true, relu: true };
    const bnQ: BatchNormParams = { ...bnP, relu: false };
    const pool: Pool2dParams = { kernel: [P, P], stride: [P, P], padding: [0, 0] };
    tg.parity('chain', TOL.bn * 3, (B, mk) => {
      const x = mk(data.x, xS), w1 = mk(data.w1, w1S), w2 = mk(data.w2, w2S), ws = mk(data.ws, wsS);
      const fc = mk(data.fc, fcS), g = mk(data.g, [K]), b = mk(data.b, [K]);
      const stats = () => [B.zeros([K], 'float32'), B.fromArray(new Float32Array(K).fill(1), [K])];
      const [m1, v1] = stats(), [m2, v2] = stats(), [m3, v3] = stats();
      const c1 = B.conv2d(x, xS, w1, w1S, null, conv(2, 1));
      const n1 = B.batchNorm2d(c1, hS, g, b, m1, v1, bnP);
      const c2 = B.conv2d(n1.y, hS, w2, w2S, null, conv(1, 1));
      const n2 = B.batchNorm2d(c2, hS, g, b, m2, v2, bnQ);
      const cs = B.conv2d(x, xS, ws, wsS, null, conv(2, 0));
      const n3 = B.batchNorm2d(cs, hS, g, b, m3, v3, bnQ);
      const h = B.addRelu(n2.y, n3.y, hS);
      const pooled = B.avgPool2d(h, hS, pool);
      const flat = B.reshape(pooled, [2, K, 1, 1], [2, K]);
      const logits = B.linear(flat, [2, K], fc, fcS, null);
      const { loss, probs } = B.crossEntropy(logits, [2, 10], t, 0.1);
      // backward
      const dl = B.crossEntropyBackward(probs, [2, 10], t, 0.1, 1);
      const lin = B.linearBackward(dl, flat, [2, K], fc, fcS, false);
      const dpool = B.reshape(lin.dx, [2, K], [2, K, 1, 1]);
      const dh = B.avgPool2dBackward(dpool, hS, pool);
      const dsum = B.reluBackward(dh, h, hS);
      const b2 = B.batchNorm2dBackward(dsum, c2, hS, g, b, n2.saved, bnQ);
      const b3 = B.batchNorm2dBackward(dsum, cs, hS, g, b, n3.saved, bnQ);
      const dws = B.conv2dBackwardWeights(b3.dx, x, xS, wsS, conv(2, 0), false).dw;
      const dn1 = B.conv2dBackwardData(b2.dx, w2, hS, w2S, conv(1, 1));
      const dw2 = B.conv2dBackwardWeights(b2.dx, n1.y, hS, w2S, conv(1, 1), false).dw;
      const b1 = B.batchNorm2dBackward(dn1, c1, hS, g, b, n1.saved, bnP);
      const dw1 = B.conv2dBackwardWeights(b1.dx, x, xS, w1S, conv(2, 1), false).dw;
      const dx = B.conv2dBackwardData(b1.dx, w1, xS, w1S, conv(2, 1));
      B.addInPlace(dx, B.conv2dBackwardData(b3.dx, ws, xS, wsS, conv(2, 0)), xS);
      if (B.name === 'native') assert.match(nativeLayoutOf(h), /^blocked/, 'activations should stay blocked');
      return {
        h: [h, hS], flat: [flat, [2, K]], loss: [B.fromArray(Float32Array.of(loss), [1]), [1]],
        dw1: [dw1, w1S], dw2: [dw2, w2S], dws: [dws, wsS], dfc: [lin.dw, fcS], dx: [dx, xS],
        dgamma1: [b1.dgamma, [K]], dbeta2: [b2.dbeta, [K]], runningVar1: [v1, [K]], runningMean3: [m3, [K]],
      };
    });
  });
}

for (const tg of targets()) {
  describe(`${tg.name} backend parity with the reference`, { skip: tg.skip }, () => {
    for (const suite of [convSuite, batchNormSuite, eltwisePoolSuite, linearSoftmaxSuite, sgdSuite, chainSuite]) suite(tg);
  });

  describe(`NaN propagation (${tg.name}), as PyTorch and the reference backend`, { skip: tg.skip }, () => {
    test('relu and addRelu keep NaN (so that a NaN reaches the loss and stops the run)', () => {
      const nb = tg.backend();
      const shape = [1, 16, 1, 1];
      const x = new Float32Array(16).fill(1);
      x[3] = NaN;
      const xs = nb.fromArray(x, shape);
      const zs = nb.fromArray(new Float32Array(16), shape);
      assert.ok(Number.isNaN(nb.toArray(nb.relu(xs, shape), shape)[3]));
      assert.ok(Number.isNaN(nb.toArray(nb.addRelu(xs, zs, shape), shape)[3]));
    });
  });
}

describe('native backend: the addon and its convolution policies', { skip: SKIP }, () => {
  test('the addon loads', () => {
    assert.ok(avail.ok, avail.ok ? '' : avail.reason);
    assert.match(native().describe(), /oneDNN 2\.\d+/);
  });

  test('the winograd policy runs 3x3 stride-1 layers with >= 16 channels on our Winograd kernels', () => {
    const B = native();
    const xS = [1, 16, 8, 8], wS = [16, 16, 3, 3];
    setNativeProfiling(true);
    try {
      withPolicy('winograd', () => {
        resetNativeProfile();
        const [x, w] = [B.fromArray(new Float32Array(numelOf(xS)).fill(1), xS), B.fromArray(new Float32Array(numelOf(wS)).fill(1), wS)];
        const y = B.conv2d(x, xS, w, wS, null, conv(1, 1));
        // every interior output sums 16 channels x 9 taps of ones
        assert.equal(B.toArray(y, xS)[3 * 8 + 3], 144);
        assert.equal(nativeProfile()['(winograd gemms)']?.calls, 1);
        for (const s of [x, w, y]) B.dispose(s);
      });
    } finally {
      setNativeProfiling(process.env.RESNET_PROFILE === '1');
    }
  });

  test('the benchmark policy times every candidate on first use of a shape and keeps the most accurate of the fastest', () => {
    const B = native();
    // a shape no other test uses, so that this process measures it now
    const xS = [3, 32, 12, 12], wS = [32, 32, 3, 3];
    withPolicy('benchmark', () => {
      const [x, w] = [B.fromArray(new Float32Array(numelOf(xS)).fill(0.5), xS), B.fromArray(new Float32Array(numelOf(wS)).fill(0.25), wS)];
      const y = B.conv2d(x, xS, w, wS, null, conv(1, 1));
      const key = 'fwd|[3,32,12,12][32,32,3,3][1,1][1,1]';
      const choice = convChoices().choices.find((c) => c.key === key);
      assert.ok(choice, `no choice recorded for ${key}`);
      // interior output: 32 channels x 9 taps of 0.5 x 0.25, exact in direct summation; a Winograd transform
      // rounds its constants (by a few ulps here), so it is held to 1e-6 relative instead
      const interior = B.toArray(y, xS)[5 * 12 + 5];
      if (choice.algo === 'direct') assert.equal(interior, 32 * 9 * 0.125);
      else assert.ok(Math.abs(interior - 36) <= 36e-6, `${choice.algo}: ${interior}`);
      if (choice.measured) {
        // oneDNN direct applies to every shape, ours to this one (3x3, stride 1, 32 channels)
        assert.ok('direct' in choice.ms && 'winograd' in choice.ms, `candidates timed: ${Object.keys(choice.ms).join(', ')}`);
        // in order of accuracy, the first within 5% of the fastest (conv_select.h)
        const fastest = Math.min(...Object.values(choice.ms));
        const want = ['direct', 'onednn-winograd', 'winograd'].find((a) => a in choice.ms && choice.ms[a] <= 1.05 * fastest);
        assert.equal(choice.algo, want, JSON.stringify(choice.ms));
      } // else it came from the cache file of an earlier run on this machine (test/backend/conv-cache.test.ts)
      for (const s of [x, w, y]) B.dispose(s);
    });
  });
});
