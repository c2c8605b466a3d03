/**
 * Golden test: our ResNet-18 against PyTorch 1.13 on the fixture made by scripts/fixtures/make_golden.py
 * (test/fixtures/golden/README.md says what it holds). Same initial weights and batch; we compare train-mode
 * logits and losses, every parameter's gradient (a sample of 256 values plus sum, Σ|g| and L2 norm over the whole
 * tensor), the BatchNorm running statistics, the weights after 3 SGD steps (plain momentum and nesterov) and the
 * eval-mode logits and probabilities.
 *
 * Two comparisons (errors are measured against the largest magnitude of the reference tensor):
 * - native backend, float32, against PyTorch float32: 1e-4 relative for logits, losses, every gradient and the
 *   running statistics of one step, and for the losses of the SGD runs. PyTorch and oneDNN/our Winograd sum in
 *   different orders; the fixture's batch is chosen so that no ReLU input of the first step sits within 6.4e-6 of the
 *   kink, where float32 rounding flips a unit and changes gradients discretely (test/fixtures/golden/README.md).
 *   The SGD runs: their 3 losses at 1e-3, the weights not compared. By steps 2 and 3, units sit 1e-7 from the kink
 *   (the fixture README's table); any float32 implementation may flip one, and then the weights after step 3 differ
 *   chaotically (measured here: 1.4e-4 to 1e-1 between runs; PyTorch's own float32 step-3 gradients differ from its
 *   float64 ones by 7.6e-3). The update rule itself is checked at 1e-9 by the float64 suite below and kernel by
 *   kernel (1e-6) in the native parity tests.
 * - reference backend, float64, against PyTorch float64: 1e-9 relative: the semantics, free of rounding.
 * The reference backend is slow: its nesterov run needs RESNET_SLOW_TESTS=1.
 *
 * Convolution algorithms: the strict native suite runs the "deterministic" policy (oneDNN direct everywhere). The
 * Winograd F(4x4,3x3) algorithms (ours and oneDNN's), which the default "benchmark" policy may pick, round the
 * pre-activations by up to ~8e-5 (measured here: layer4's inputs, against 3e-7 for direct), more than the
 * fixture's 6.4e-6 margin from the ReLU kinks: on an AVX-512 CPU ours flipped one unit of layer4.0's first ReLU
 * (direct 1.57e-5, Winograd -9.35e-6), and with B = 2 and 4x4 maps, that BatchNorm channel's 32 values moved
 * every gradient below it by up to 2e-1 of its max. That is rounding, not a wrong kernel (the parity tests hold
 * each Winograd kernel to 2e-5 against the reference), but no float32 tolerance covers a flip. So the Winograd
 * policies have a suite of their own, held to what a flip cannot break and a wrong kernel would: logits, losses
 * and eval outputs at 1e-4, and every gradient at cosine similarity >= 0.99 to PyTorch's (a flip measured 0.998).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readSafetensorsFile } from '../../src/interop/safetensors';
import type { HostTensor, StateDict } from '../../src/tensor/host';
import { backendByName, nativeUnavailableReason } from '../../src/backend';
import type { ConvPolicy } from '../../src/backend/native';
import type { Backend } from '../../src/backend/backend';
import { buildModel, inferSpec } from '../../src/models';
import type { ResNet } from '../../src/models/resnet';
import { Tensor, crossEntropy, noGrad, softmax, tidy } from '../../src/tensor';
import { SGD } from '../../src/nn';
import { trainStep } from '../../src/train/step';
import { fixtureInput, fixtureSampleIndices, fixtureStateDict, fixtureTargets, goldenFixturePath } from '../helpers/fixture-values';
import { relErrorToMax } from '../helpers/close';

const golden: StateDict = readSafetensorsFile(goldenFixturePath()).tensors;

let prefix = '';

/** A golden tensor of the current suite's precision (`f64.` names for the float64 suite). */
function g(name: string): Float64Array {
  const t = golden.get(prefix + name);
  if (!t) throw new Error(`golden fixture has no tensor ${name}`);
  return Float64Array.from(t.data as Float32Array, Number);
}

function expectRel(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const err = relErrorToMax(actual, expected);
  assert.ok(err <= tol, `${what}: relative error ${err.toExponential(3)} > ${tol}`);
}

/** sum, Σ|v|, L2 of a flat array */
function stats(v: ArrayLike<number>): [number, number, number] {
  let s = 0, a = 0, q = 0;
  for (let i = 0; i < v.length; i++) { s += v[i]; a += Math.abs(v[i]); q += v[i] * v[i]; }
  return [s, a, Math.sqrt(q)];
}

function sample(v: ArrayLike<number>): number[] {
  return fixtureSampleIndices(v.length).map((i) => v[i]);
}

/** Compares a full tensor against `<prefix>.<key>.sample` and `.stats`. */
function expectSampled(v: ArrayLike<number>, prefix: string, tol: number): void {
  expectRel(sample(v), g(`${prefix}.sample`), tol, `${prefix}.sample`);
  const [s, a, l2] = stats(v);
  const [rs, ra, rl2] = g(`${prefix}.stats`);
  assert.ok(Math.abs(s - rs) <= tol * ra, `${prefix}: sum ${s} vs ${rs} (Σ|g| ${ra})`);
  assert.ok(Math.abs(a - ra) <= tol * ra, `${prefix}: Σ|g| ${a} vs ${ra}`);
  assert.ok(Math.abs(l2 - rl2) <= tol * rl2, `${prefix}: L2 ${l2} vs ${rl2}`);
}

let dtype: 'float32' | 'float64' = 'float32';

function freshModel(be: Backend): ResNet {
  // the factory, as every command builds: the spec inferred from PyTorch's state dict is the seed's
  const sd = fixtureStateDict();
  const m = buildModel(inferSpec(sd), { backend: be, dtype });
  m.loadStateDict(sd);
  return m;
}

function inputs(be: Backend): { x: Tensor; y: Int32Array } {
  const x = fixtureInput();
  const data = dtype === 'float64' ? Float64Array.from(x.data as Float32Array) : (x.data as Float32Array);
  return {
    x: Tensor.fromArray(data, x.shape, be),
    y: Int32Array.from(fixtureTargets().data as BigInt64Array, Number),
  };
}

function checkBuffers(m: ResNet, what: string, tol: number): void {
  const sd = m.stateDict();
  for (const [k, v] of sd) {
    if (!k.includes('running_') && !k.endsWith('num_batches_tracked')) continue;
    const ref = golden.get(`${prefix}${what}.${k}`) as HostTensor;
    if (v.dtype === 'int64') assert.equal(v.data[0], ref.data[0], `${what}.${k}`);
    else expectRel(v.data as Float32Array, g(`${what}.${k}`), tol, `${what}.${k}`);
  }
}

function runSgd(be: Backend, nesterov: boolean, what: string, tol: number, weightTol: number | null): void {
  const m = freshModel(be).train();
  const opt = new SGD(m.namedParameters(), { lr: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov });
  const { x, y } = inputs(be);
  const losses: number[] = [];
  for (let s = 0; s < 3; s++) {
    losses.push(trainStep(m, opt, x, y));
  }
  expectRel(losses, g(`${what}.losses`), tol, `${what}.losses`);
  if (weightTol !== null) {
    for (const [k, p] of m.namedParameters()) expectSampled(p.toArray(), `${what}.${k}`, weightTol);
    checkBuffers(m, what, weightTol);
  }
  opt.dispose();
  x.dispose();
  m.dispose();
}

/** The convolution policy of the native backend for the tests that follow. */
function useConvPolicy(policy: ConvPolicy): void {
  (require('../../src/backend/native') as typeof import('../../src/backend/native')).setConvPolicy(policy);
}

interface SuiteSpec {
  backend: 'native' | 'reference';
  /** the native backend's convolution policy */
  policy?: ConvPolicy;
  dtype: 'float32' | 'float64';
  /** one forward/backward from the fixture's weights */
  oneStepTol: number;
  /** the losses of the SGD runs */
  tol: number;
  /** weights and running statistics after 3 SGD steps (null: not compared, see above) */
  sgdTol: number | null;
  /** run the nesterov SGD check (slow on the reference backend) */
  nesterov: boolean;
}

function suite(spec: SuiteSpec): void {
  const reason = spec.backend === 'native' ? nativeUnavailableReason() : null;
  const skip = reason && process.env.RESNET_REQUIRE_NATIVE !== '1' ? `native backend unavailable: ${reason}` : false;
  const tol = spec.tol;
  const policy = spec.policy ? `, ${spec.policy} convolutions` : '';
  describe(`ResNet-18 against PyTorch (${spec.backend} backend, ${spec.dtype}${policy})`, { skip }, () => {
    const be = () => backendByName(spec.backend);
    const setup = () => {
      prefix = spec.dtype === 'float64' ? 'f64.' : '';
      dtype = spec.dtype;
      if (spec.policy) useConvPolicy(spec.policy);
    };
    test('train mode: logits, losses, every gradient, running statistics', () => {
      setup();
      const tol = spec.oneStepTol;
      const m = freshModel(be()).train();
      const { x, y } = inputs(be());
      tidy(() => {
        const logits = m.forward(x);
        expectRel(logits.toArray(), g('train.logits'), tol, 'train.logits');
        const loss = crossEntropy(logits, y);
        expectRel([loss.item()], g('train.loss'), tol, 'train.loss');
        expectRel([crossEntropy(logits, y, { labelSmoothing: 0.1 }).item()], g('train.loss_ls'), tol, 'train.loss_ls');
        loss.backward();
      });
      for (const [k, p] of m.namedParameters()) {
        assert.ok(p.grad, `${k} has no gradient`);
        expectSampled(p.grad.toArray(), `grad.${k}`, tol);
      }
      checkBuffers(m, 'bn_after', tol);
      x.dispose();
      m.dispose();
    });

    test('eval mode: logits, loss and softmax probabilities', () => {
      setup();
      const tol = spec.oneStepTol;
      const m = freshModel(be()).eval();
      const { x, y } = inputs(be());
      noGrad(() => tidy(() => {
        const logits = m.forward(x);
        expectRel(logits.toArray(), g('eval.logits'), tol, 'eval.logits');
        expectRel([crossEntropy(logits, y).item()], g('eval.loss'), tol, 'eval.loss');
        expectRel(softmax(logits).toArray(), g('eval.probs'), tol, 'eval.probs');
      }));
      x.dispose();
      m.dispose();
    });

    test('3 SGD steps, momentum 0.9 and weight decay 5e-4', () => {
      setup();
      runSgd(be(), false, 'sgd3', tol, spec.sgdTol);
    });

    test('3 SGD steps, nesterov', { skip: spec.nesterov ? false : 'slow on this backend (RESNET_SLOW_TESTS=1)' }, () => {
      setup();
      runSgd(be(), true, 'nest3', tol, spec.sgdTol);
    });
  });
}

/** cos(a, b) over two flat arrays */
function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { d += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return d / Math.sqrt(na * nb);
}

/** The Winograd policies (see the header): outputs at 1e-4, gradients by direction. */
function winogradSuite(policy: ConvPolicy): void {
  const reason = nativeUnavailableReason();
  const skip = reason && process.env.RESNET_REQUIRE_NATIVE !== '1' ? `native backend unavailable: ${reason}` : false;
  describe(`ResNet-18 against PyTorch (native backend, float32, ${policy} convolutions)`, { skip }, () => {
    test('train mode: logits and losses at 1e-4, every gradient at cosine >= 0.99', () => {
      prefix = '';
      dtype = 'float32';
      useConvPolicy(policy);
      const be = backendByName('native');
      const m = freshModel(be).train();
      const { x, y } = inputs(be);
      tidy(() => {
        const logits = m.forward(x);
        expectRel(logits.toArray(), g('train.logits'), 1e-4, 'train.logits');
        const loss = crossEntropy(logits, y);
        expectRel([loss.item()], g('train.loss'), 1e-4, 'train.loss');
        loss.backward();
      });
      for (const [k, p] of m.namedParameters()) {
        assert.ok(p.grad, `${k} has no gradient`);
        const c = cosine(sample(p.grad.toArray()), g(`grad.${k}.sample`));
        assert.ok(c >= 0.99, `grad.${k}: cosine similarity ${c.toFixed(5)} < 0.99`);
      }
      x.dispose();
      m.dispose();
    });

    test('eval mode: logits and probabilities at 1e-4', () => {
      useConvPolicy(policy);
      const be = backendByName('native');
      const m = freshModel(be).eval();
      const { x } = inputs(be);
      noGrad(() => tidy(() => {
        const logits = m.forward(x);
        expectRel(logits.toArray(), g('eval.logits'), 1e-4, 'eval.logits');
        expectRel(softmax(logits).toArray(), g('eval.probs'), 1e-4, 'eval.probs');
      }));
      x.dispose();
      m.dispose();
    });
  });
}

suite({ backend: 'native', policy: 'deterministic', dtype: 'float32', oneStepTol: 1e-4, tol: 1e-3, sgdTol: null, nesterov: true });
for (const policy of ['winograd', 'onednn-winograd', 'benchmark'] as const) winogradSuite(policy);
suite({ backend: 'reference', dtype: 'float64', oneStepTol: 1e-9, tol: 1e-9, sgdTol: 1e-9, nesterov: process.env.RESNET_SLOW_TESTS === '1' });
