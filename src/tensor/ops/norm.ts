/**
 * batchNorm2d over [N,C,H,W] per channel, with PyTorch's semantics (Ioffe & Szegedy 2015): training mode
 * normalises with the batch mean and biased variance and updates the running statistics in place (momentum 0.1
 * convention, unbiased variance for running_var); eval mode uses the running statistics. `relu: true` fuses the
 * ReLU that follows most BatchNorms in ResNet (one pass instead of two, forward and backward).
 */
import type { BatchNormParams } from '../../backend/backend';
import { makeResult, Tensor } from '../tensor';
import { expectRank, expectSameBackend, fmt } from './check';

export interface BatchNormOptions {
  training: boolean;
  momentum?: number;
  eps?: number;
  relu?: boolean;
}

export function batchNorm2d(
  x: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, opts: BatchNormOptions,
): Tensor {
  expectRank('batchNorm2d', 'x', x, 4, '[N,C,H,W]');
  const C = x.shape[1];
  for (const [name, t] of [['weight', gamma], ['bias', beta], ['running_mean', runningMean], ['running_var', runningVar]] as const) {
    if (t.shape.length !== 1 || t.shape[0] !== C) {
      throw new Error(`batchNorm2d: expected ${name} of shape [${C}] for x ${fmt(x.shape)}, received ${fmt(t.shape)}`);
    }
  }
  expectSameBackend('batchNorm2d', x, gamma, beta, runningMean, runningVar);
  if (opts.training && x.shape[0] * x.shape[2] * x.shape[3] < 2) {
    throw new Error(`batchNorm2d: expected more than 1 value per channel when training, received input ${fmt(x.shape)}`);
  }
  const p: BatchNormParams = {
    training: opts.training, momentum: opts.momentum ?? 0.1, eps: opts.eps ?? 1e-5, relu: opts.relu ?? false,
  };
  const be = x.backend;
  const { y, saved } = be.batchNorm2d(
    x.storage, x.shape, gamma.storage, beta.storage, runningMean.storage, runningVar.storage, p,
  );
  const release = () => saved.storages.forEach((s) => be.dispose(s));
  return makeResult('batchNorm2d', y, x.shape, be, [x, gamma, beta], (dy) => {
    const r = be.batchNorm2dBackward(dy.storage, x.storage, x.shape, gamma.storage, beta.storage, saved, p);
    return [new Tensor(r.dx, x.shape, be), new Tensor(r.dgamma, [C], be), new Tensor(r.dbeta, [C], be)];
  }, release);
}
