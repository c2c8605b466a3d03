/** Elementwise ops: relu, add, the fused residual join addRelu = relu(a + b), and scaling by a constant. */
import { makeResult, Tensor } from '../tensor';
import { expectSameBackend, expectSameShape } from './check';

export function relu(x: Tensor): Tensor {
  const be = x.backend;
  const y = be.relu(x.storage, x.shape);
  const out: Tensor = makeResult('relu', y, x.shape, be, [x], (dy) => [
    new Tensor(be.reluBackward(dy.storage, out.storage, x.shape), x.shape, be),
  ]);
  return out;
}

export function add(a: Tensor, b: Tensor): Tensor {
  expectSameShape('add', a, b);
  expectSameBackend('add', a, b);
  const be = a.backend;
  return makeResult('add', be.add(a.storage, b.storage, a.shape), a.shape, be, [a, b], (dy) => [dy, dy]);
}

/** relu(a + b) in one pass: the end of every ResNet BasicBlock (out += shortcut(x); relu(out)). */
export function addRelu(a: Tensor, b: Tensor): Tensor {
  expectSameShape('addRelu', a, b);
  expectSameBackend('addRelu', a, b);
  const be = a.backend;
  const y = be.addRelu(a.storage, b.storage, a.shape);
  const out: Tensor = makeResult('addRelu', y, a.shape, be, [a, b], (dy) => {
    const g = new Tensor(be.reluBackward(dy.storage, out.storage, a.shape), a.shape, be);
    return [g, g];
  });
  return out;
}

export function scale(x: Tensor, s: number): Tensor {
  const be = x.backend;
  return makeResult('scale', be.scale(x.storage, s, x.shape), x.shape, be, [x], (dy) => [
    new Tensor(be.scale(dy.storage, s, x.shape), x.shape, be),
  ]);
}

/** Sum of all elements as a scalar tensor (shape []). */
export function sum(x: Tensor): Tensor {
  const be = x.backend;
  const v = be.sum(x.storage, x.shape);
  const arr = x.dtype === 'float64' ? Float64Array.of(v) : Float32Array.of(v);
  return makeResult('sum', be.fromArray(arr, []), [], be, [x], (dy) => {
    const g = dy.toArray()[0];
    const ones = x.dtype === 'float64' ? new Float64Array(x.numel).fill(g) : new Float32Array(x.numel).fill(g);
    return [new Tensor(be.fromArray(ones, x.shape), x.shape, be)];
  });
}
