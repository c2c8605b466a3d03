/** linear: x [N,I], w [O,I], b [O] -> y [N,O] = x wᵀ + b (PyTorch's nn.Linear layout). */
import { makeResult, Tensor } from '../tensor';
import { expectRank, expectSameBackend, fmt } from './check';

export function linear(x: Tensor, w: Tensor, b: Tensor | null): Tensor {
  expectRank('linear', 'x', x, 2, '[N,I]');
  expectRank('linear', 'w', w, 2, '[O,I]');
  if (x.shape[1] !== w.shape[1]) throw new Error(`linear: x ${fmt(x.shape)} does not match weight ${fmt(w.shape)}`);
  if (b && (b.shape.length !== 1 || b.shape[0] !== w.shape[0])) {
    throw new Error(`linear: expected bias of shape [${w.shape[0]}], received ${fmt(b.shape)}`);
  }
  expectSameBackend('linear', ...(b ? [x, w, b] : [x, w]));
  const be = x.backend;
  const y = be.linear(x.storage, x.shape, w.storage, w.shape, b ? b.storage : null);
  return makeResult('linear', y, [x.shape[0], w.shape[0]], be, b ? [x, w, b] : [x, w], (dy) => {
    const r = be.linearBackward(dy.storage, x.storage, x.shape, w.storage, w.shape, b !== null);
    const out = [new Tensor(r.dx, x.shape, be), new Tensor(r.dw, w.shape, be)];
    if (r.db) out.push(new Tensor(r.db, [w.shape[0]], be));
    return out;
  });
}
