/**
 * SGD's hyper-parameters are checked where they enter (src/nn/optim.ts checkSgdOptions): when the optimizer is
 * built, when its lr is set, and when `resnet train` reads its flags, each error naming what it got.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { noDecayNames, SGD } from '../../src/nn/optim';
import { Parameter, Tensor } from '../../src/tensor';
import { buildModel, SEED_SPEC } from '../../src/models';
import { RECIPES, validateConfig } from '../../src/train/config';

test('building an SGD refuses each bad hyper-parameter by name', () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ lr: Number.NaN }, /^Error: SGD: lr must be a number >= 0, received NaN$/],
    [{ lr: Number.POSITIVE_INFINITY }, /^Error: SGD: lr must be a number >= 0, received Infinity$/],
    [{ lr: 0.1, momentum: -0.9 }, /^Error: SGD: momentum must be a number >= 0, received -0.9$/],
    [{ lr: 0.1, dampening: -1 }, /^Error: SGD: dampening must be a number >= 0, received -1$/],
    [{ lr: 0.1, weightDecay: Number.NaN }, /^Error: SGD: weightDecay must be a number >= 0, received NaN$/],
    [{ lr: 0.1, nesterov: true }, /^Error: SGD: nesterov needs a momentum > 0, received momentum 0$/],
    [{ lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }, /^Error: SGD: nesterov needs dampening 0, received dampening 0.1$/],
  ];
  for (const [opts, message] of bad) {
    assert.throws(() => new SGD([], opts as { lr: number }), message, JSON.stringify(opts));
  }
  const ok = new SGD([], { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov: true });
  assert.deepEqual([ok.lr, ok.momentum, ok.dampening, ok.weightDecay, ok.nesterov], [0.1, 0.9, 0, 5e-4, true]);
});

test('setting a bad lr (a schedule gone wrong) is refused and leaves the previous one', () => {
  const opt = new SGD([], { lr: 0.1 });
  opt.lr = 0.05;
  assert.equal(opt.lr, 0.05);
  assert.throws(() => { opt.lr = Number.NaN; }, /^Error: SGD: lr must be a number >= 0, received NaN$/);
  assert.throws(() => { opt.lr = -1; }, /^Error: SGD: lr must be a number >= 0, received -1$/);
  assert.equal(opt.lr, 0.05);
});

test('resnet train names the flag of a bad SGD setting', () => {
  assert.throws(() => validateConfig({ ...RECIPES.seed, lr: -0.1 }), /^Error: train: --lr must be a number >= 0, received -0.1$/);
  assert.throws(() => validateConfig({ ...RECIPES.seed, weightDecay: Number.NaN }),
    /^Error: train: --weight-decay must be a number >= 0, received NaN$/);
  assert.throws(() => validateConfig({ ...RECIPES.fast, momentum: 0 }), /^Error: train: --nesterov needs a momentum > 0, received --momentum 0$/);
  assert.doesNotThrow(() => validateConfig(RECIPES.fast));
  assert.doesNotThrow(() => validateConfig(RECIPES.fast5));
  assert.doesNotThrow(() => validateConfig(RECIPES.seed));
});

test('noDecay: the named parameters get no weight decay, as a PyTorch param group with weight_decay 0', () => {
  // torch.optim.SGD([{params: [w]}, {params: [b], weight_decay: 0}], lr=0.1, momentum=0.9, weight_decay=0.01,
  // nesterov=True), two steps with grads w ([0.3,-0.1], [0.2,0.4]) and b ([0.3], [0.2]), PyTorch 1.13 gave:
  const expected = { w: [0.876201928, -2.0397234], b: [0.380699992] };
  const w = Parameter.fromArray(Float32Array.from([1, -2]), [2]);
  const b = Parameter.fromArray(Float32Array.from([0.5]), [1]);
  const opt = new SGD([['w', w], ['b', b]], { lr: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov: true, noDecay: ['b'] });
  for (const g of [[0.3, -0.1], [0.2, 0.4]]) {
    w.grad = Tensor.fromArray(Float32Array.from(g), [2]);
    b.grad = Tensor.fromArray(Float32Array.from([g[0]]), [1]);
    opt.step();
    opt.zeroGrad();
  }
  const got = { w: Array.from(w.toArray()), b: Array.from(b.toArray()) };
  for (const k of ['w', 'b'] as const) {
    got[k].forEach((v, i) => assert.ok(Math.abs(v - expected[k][i]) < 1e-6, `${k}[${i}] = ${v}, PyTorch ${expected[k][i]}`));
  }
  assert.throws(() => new SGD([['w', w]], { lr: 0.1, noDecay: ['bias'] }), /^Error: SGD: noDecay names bias, which is not one of the parameters$/);
});

test('noDecayNames: batch-norm weights and biases and the linear bias of ResNet-18, no conv or linear weight', () => {
  const names = noDecayNames(buildModel(SEED_SPEC, { seed: 0 }).namedParameters());
  assert.ok(names.includes('conv1.1.weight') && names.includes('conv1.1.bias') && names.includes('fc.bias'));
  assert.ok(names.includes('layer2.0.shortcut.1.weight') && names.includes('layer4.1.left.4.bias'));
  assert.ok(!names.includes('conv1.0.weight') && !names.includes('fc.weight') && !names.includes('layer1.0.left.0.weight'));
  // batch norms: the stem's, two in each of the 8 blocks and one in each of the 3 projection shortcuts = 20
  assert.equal(names.length, 2 * 20 + 1);
});
