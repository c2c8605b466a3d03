/**
 * Reference backend: one step of torch.optim.SGD for one parameter, in place.
 *
 * What it is: the update documented on `Backend.sgdStep` (weight decay added to the gradient; momentum buffer
 * set to the gradient on the first step, then buf = momentum·buf + (1−dampening)·g; Nesterov's look-ahead),
 * with each stored intermediate rounded to the storage dtype as PyTorch's separate in-place ops do.
 * What it is not: an optimiser object (parameter groups, state and the LR schedule live in src/nn).
 * References: PyTorch torch.optim.SGD docs (the algorithm box); Sutskever et al. 2013 for Nesterov momentum.
 */
import { checkSgdParams, type SgdParams, type Shape, type Storage } from '../backend';
import { expectAnyShape, inputOf, rounderOf } from './storage';

export function sgdStep(
  param: Storage, grad: Storage, momentumBuf: Storage | null, shape: Shape, p: SgdParams, firstStep: boolean,
): void {
  const op = 'sgdStep';
  expectAnyShape(op, 'shape', shape);
  checkSgdParams(op, p, momentumBuf !== null);
  const w = inputOf(op, 'param', param, shape);
  const gd = inputOf(op, 'grad', grad, shape, param.dtype);
  const buf = momentumBuf === null ? null : inputOf(op, 'momentumBuf', momentumBuf, shape, param.dtype);
  const round = rounderOf(param.dtype);
  for (let i = 0; i < w.length; i++) {
    let g = p.weightDecay !== 0 ? round(gd[i] + p.weightDecay * w[i]) : gd[i];
    if (buf !== null) {
      buf[i] = firstStep ? g : round(round(p.momentum * buf[i]) + (1 - p.dampening) * g);
      g = p.nesterov ? round(g + p.momentum * buf[i]) : buf[i];
    }
    w[i] = w[i] - p.lr * g;
  }
}
