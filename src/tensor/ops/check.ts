/** Input validation shared by the ops: messages name the op, what it expected and what it received. */
import type { Tensor } from '../tensor';

export function fmt(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

export function expectRank(op: string, name: string, t: Tensor, rank: number, letters: string): void {
  if (t.shape.length !== rank) {
    throw new Error(`${op}: expected ${name} of rank ${rank} ${letters}, received ${fmt(t.shape)}`);
  }
}

export function expectSameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new Error(`${op}: expected operands of the same shape, received ${fmt(a.shape)} and ${fmt(b.shape)}`);
  }
}

export function expectSameBackend(op: string, ...ts: Tensor[]): void {
  const first = ts[0];
  for (const t of ts) {
    if (t.backend !== first.backend) {
      throw new Error(`${op}: operands live on different backends (${first.backend.name} and ${t.backend.name})`);
    }
    if (t.dtype !== first.dtype) {
      throw new Error(`${op}: operands have different dtypes (${first.dtype} and ${t.dtype})`);
    }
  }
}
