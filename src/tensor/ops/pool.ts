/** avgPool2d over [N,C,H,W]: zero padding counted in the divisor, as PyTorch's default count_include_pad=True. */
import { poolOutputShape, type Pool2dParams } from '../../backend/backend';
import { makeResult, Tensor } from '../tensor';
import { expectRank, fmt } from './check';

export function avgPool2d(x: Tensor, kernel: number, stride: number = kernel, padding = 0): Tensor {
  expectRank('avgPool2d', 'x', x, 4, '[N,C,H,W]');
  const p: Pool2dParams = { kernel: [kernel, kernel], stride: [stride, stride], padding: [padding, padding] };
  const yShape = poolOutputShape(x.shape, p);
  if (yShape[2] <= 0 || yShape[3] <= 0) throw new Error(`avgPool2d: kernel ${kernel} does not fit input ${fmt(x.shape)}`);
  const be = x.backend;
  return makeResult('avgPool2d', be.avgPool2d(x.storage, x.shape, p), yShape, be, [x], (dy) => [
    new Tensor(be.avgPool2dBackward(dy.storage, x.shape, p), x.shape, be),
  ]);
}
