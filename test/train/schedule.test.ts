/**
 * Learning-rate schedules (src/train/schedule.ts) against written-out values: onecycle against PyTorch 1.13's
 * OneCycleLR (max_lr 0.1, pct_start 0.25, defaults otherwise), linear against its definition worked by hand.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { learningRate } from '../../src/train/schedule';

const close = (got: number[], want: number[], what: string) => {
  assert.equal(got.length, want.length);
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) <= 1e-9 + 1e-7 * Math.abs(want[i]), `${what} step ${i}: ${v}, expected ${want[i]}`));
};
const run = (name: 'onecycle' | 'linear' | 'cosine' | 'constant', T: number, warm: number) =>
  Array.from({ length: T }, (_, i) => learningRate(name, 0.1, i, T, warm));

test('onecycle equals PyTorch OneCycleLR, also when pct_start·T is not a whole number of steps', () => {
  // torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=T, pct_start=0.25), lr read before each step
  close(run('onecycle', 12, 0.25), [0.004, 0.052, 0.1, 0.0969846431, 0.08830226895, 0.0750001, 0.05868257415,
    0.04131782585, 0.0250003, 0.01169813105, 0.003015756899, 4e-07], 'T=12');
  close(run('onecycle', 10, 0.25), [0.004, 0.076, 0.09890738441, 0.09045088792, 0.0750001, 0.05522660226,
    0.03454941208, 0.01654380351, 0.004323109827, 4e-07], 'T=10');
});

test('linear: up from 0 to the peak over the warm-up steps, then down to 0 at the end', () => {
  // T = 10, warm-up 0.2 → 2 steps: 0.05, 0.1; then 0.1·(10−t)/8 for t = 2..9
  close(run('linear', 10, 0.2), [0.05, 0.1, 0.1, 0.0875, 0.075, 0.0625, 0.05, 0.0375, 0.025, 0.0125], 'warm 0.2');
  // no warm-up: straight down from the peak
  close(run('linear', 4, 0), [0.1, 0.075, 0.05, 0.025], 'warm 0');
  // past the end (a resumed run with more epochs is refused elsewhere; here the rate stays 0)
  assert.equal(learningRate('linear', 0.1, 10, 10, 0.2), 0);
});

test('cosine and constant', () => {
  close(run('cosine', 4, 0), [0.1, 0.1 * 0.5 * (1 + Math.SQRT1_2), 0.05, 0.1 * 0.5 * (1 - Math.SQRT1_2)], 'cosine');
  close(run('constant', 3, 0), [0.1, 0.1, 0.1], 'constant');
});
