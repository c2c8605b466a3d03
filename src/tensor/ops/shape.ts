/** reshape and flatten: same values, new shape (a copy into plain row-major layout on every backend). */
import { numelOf } from '../../backend/backend';
import { makeResult, Tensor } from '../tensor';
import { fmt } from './check';

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const inferred = [...shape];
  const free = inferred.indexOf(-1);
  if (free >= 0) inferred[free] = x.numel / numelOf(inferred.filter((_, i) => i !== free));
  if (numelOf(inferred) !== x.numel || inferred.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`reshape: cannot view ${fmt(x.shape)} (${x.numel} elements) as ${fmt(shape)}`);
  }
  const be = x.backend;
  return makeResult('reshape', be.reshape(x.storage, x.shape, inferred), inferred, be, [x], (dy) => [
    new Tensor(be.reshape(dy.storage, inferred, x.shape), x.shape, be),
  ]);
}

/** [N, ...] -> [N, prod(...)] (PyTorch's x.view(x.size(0), -1)) */
export function flatten(x: Tensor): Tensor {
  return reshape(x, [x.shape[0], -1]);
}
