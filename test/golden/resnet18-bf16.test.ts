/**
 * bf16 mixed precision against PyTorch 1.13's CPU autocast (torch.autocast('cpu', dtype=torch.bfloat16)) on the
 * golden batch: test/fixtures/golden/resnet18_bf16.safetensors, made by scripts/fixtures/make_golden_bf16.py from
 * the same weights and batch as the fp32 fixture.
 *
 * The two are not the same arithmetic, so the bounds are bf16's, not float32's: both round convolution and linear
 * inputs and weights to bf16 (8 significant bits, relative rounding 2^-9 ≈ 2e-3) and accumulate in float32, but
 * autocast also rounds each convolution's output to bf16 before batch norm, where ours keeps it in float32.
 * - Logits and loss within 3e-2 of the largest logit / of the loss, eval probabilities within 2e-2.
 * - Gradients: at this random initialisation bf16 rounding flips many ReLU units, so no bf16 implementation is
 *   within cosine 0.99 of the float32 gradients: autocast's own come out at cosine 0.95-0.97 to PyTorch's float32
 *   ones in the early layers (the fixture's `fp32.` tensors; 0.90 on the 2-image fp32 golden batch, hence 32 images
 *   here), and two bf16 implementations differ from each other as much. So each of our gradients must approximate
 *   the float32 one about as well as autocast's does: cos(ours, fp32) >= cos(autocast, fp32) - 0.03 for every
 *   parameter, and on average over the parameters within 0.01 of autocast's.
 * The fp32 logits are also required to differ from these bf16 results, so that the test cannot pass by computing
 * in fp32.
 * Skips, naming the missing instructions, on a CPU without AVX512_BF16 or AMX-BF16 (and without the addon).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readSafetensorsFile } from '../../src/interop/safetensors';
import { backendByName, nativeUnavailableReason } from '../../src/backend';
import { SEED_SPEC, buildModel } from '../../src/models';
import { Tensor, crossEntropy, noGrad, softmax, tidy } from '../../src/tensor';
import { fixtureSampleIndices, fixtureStateDict, goldenFixturePath } from '../helpers/fixture-values';
import { relErrorToMax } from '../helpers/close';

const golden = readSafetensorsFile(goldenFixturePath('resnet18_bf16.safetensors')).tensors;

function g(name: string): Float64Array {
  const t = golden.get(name);
  if (!t) throw new Error(`golden fixture has no tensor ${name}`);
  return Float64Array.from(t.data as Float32Array, Number);
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { d += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return d / Math.sqrt(na * nb);
}

/** The golden batch of this fixture (32 images; see scripts/fixtures/make_golden_bf16.py). */
function batch(be: ReturnType<typeof backendByName>): { x: Tensor; y: Int32Array } {
  const x = golden.get('input');
  const y = golden.get('target');
  if (!x || !y) throw new Error('bf16 golden fixture has no input/target');
  return { x: Tensor.fromArray(x.data as Float32Array, x.shape, be), y: Int32Array.from(y.data as BigInt64Array, Number) };
}

function skipReason(): string | false {
  const noNative = nativeUnavailableReason();
  if (noNative) return process.env.RESNET_REQUIRE_NATIVE === '1' ? false : `native backend unavailable: ${noNative}`;
  return backendByName('native').bf16Unavailable() ?? false;
}

describe('ResNet-18 in bf16 mixed precision against PyTorch CPU autocast', { skip: skipReason() }, () => {
  const be = () => backendByName('native');
  const model = () => {
    const m = buildModel(SEED_SPEC, { backend: be() });
    m.loadStateDict(fixtureStateDict());
    return m;
  };
  const inBf16 = <T>(fn: () => T): T => {
    be().setPrecision('bf16');
    try {
      return fn();
    } finally {
      be().setPrecision('fp32');
    }
  };

  test('train mode: logits and loss at 3e-2, every gradient as close to float32 as autocast\'s', () => {
    const m = model().train();
    const { x, y } = batch(be());
    const logits = inBf16(() => tidy(() => {
      const l = m.forward(x);
      const loss = crossEntropy(l, y);
      const out = { logits: l.toArray(), loss: loss.item() };
      loss.backward();
      return out;
    }));
    const errLogits = relErrorToMax(logits.logits, g('bf16.train.logits'));
    assert.ok(errLogits <= 3e-2, `bf16.train.logits: relative error ${errLogits.toExponential(3)} > 3e-2`);
    // it really ran in bf16: float32 would give the float32 loss to ~1e-6
    const loss32 = g('fp32.train.loss')[0];
    assert.ok(Math.abs(logits.loss - loss32) / loss32 > 1e-4, `bf16 loss ${logits.loss} equals the float32 one ${loss32}`);
    const errLoss = Math.abs(logits.loss - g('bf16.train.loss')[0]) / g('bf16.train.loss')[0];
    assert.ok(errLoss <= 3e-2, `bf16.train.loss: ${logits.loss} vs ${g('bf16.train.loss')[0]}`);
    let oursSum = 0, theirsSum = 0, n = 0;
    for (const [k, p] of m.namedParameters()) {
      assert.ok(p.grad, `${k} has no gradient`);
      const v = p.grad.toArray();
      const ref = g(`fp32.grad.${k}.sample`);
      const ours = cosine(fixtureSampleIndices(v.length).map((i) => v[i]), ref);
      const theirs = cosine(g(`bf16.grad.${k}.sample`), ref);
      assert.ok(ours >= theirs - 0.03, `grad.${k}: cosine to float32 ${ours.toFixed(4)}, autocast's ${theirs.toFixed(4)}`);
      oursSum += ours;
      theirsSum += theirs;
      n++;
    }
    assert.ok(oursSum / n >= theirsSum / n - 0.01, `mean cosine to float32 ${oursSum / n}, autocast's ${theirsSum / n}`);
    x.dispose();
    m.dispose();
  });

  test('eval mode: logits at 3e-2 and probabilities at 2e-2', () => {
    const m = model().eval();
    const { x } = batch(be());
    const r = inBf16(() => noGrad(() => tidy(() => {
      const l = m.forward(x);
      return { logits: l.toArray(), probs: softmax(l).toArray() };
    })));
    const e1 = relErrorToMax(r.logits, g('bf16.eval.logits'));
    assert.ok(e1 <= 3e-2, `bf16.eval.logits: relative error ${e1.toExponential(3)} > 3e-2`);
    const e2 = relErrorToMax(r.probs, g('bf16.eval.probs'));
    assert.ok(e2 <= 2e-2, `bf16.eval.probs: relative error ${e2.toExponential(3)} > 2e-2`);
    x.dispose();
    m.dispose();
  });
});
