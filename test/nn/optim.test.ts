/**
 * SGD's hyper-parameters are checked where they enter (src/nn/optim.ts checkSgdOptions): when the optimizer is
 * built, when its lr is set, and when `resnet train` reads its flags, each error naming what it got.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SGD } from '../../src/nn/optim';
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
  assert.doesNotThrow(() => validateConfig(RECIPES.seed));
});
