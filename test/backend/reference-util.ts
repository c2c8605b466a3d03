/**
 * Shared plumbing for the reference backend's tests: random float64 inputs, and calls that turn plain arrays
 * into storages and back while disposing every storage they made.
 * Not a test file itself (no `.test.ts` suffix).
 */
import type { Shape, Storage } from '../../src/backend/backend';
import { numelOf } from '../../src/backend/backend';
import { createReferenceBackend } from '../../src/backend/reference';
import { Rng } from '../../src/util/rng';

export const B = createReferenceBackend();

/** n values uniform in [lo, hi) from a seeded generator */
export function uniform(rng: Rng, shape: Shape, lo = -1, hi = 1): Float64Array {
  const a = new Float64Array(numelOf(shape));
  for (let i = 0; i < a.length; i++) a[i] = rng.uniformRange(lo, hi);
  return a;
}

/** Reads a storage as float64 and disposes it. */
export function take(s: Storage, shape: Shape): Float64Array {
  const a = Float64Array.from(B.toArray(s, shape));
  B.dispose(s);
  return a;
}

/**
 * Runs `fn` with a maker that copies arrays into new storages (float64 arrays give float64 storages);
 * every storage made this way is disposed when `fn` returns.
 */
export function withStorages<T>(fn: (mk: (a: Float64Array | Float32Array, shape: Shape) => Storage) => T): T {
  const made: Storage[] = [];
  const mk = (a: Float64Array | Float32Array, shape: Shape): Storage => {
    const s = B.fromArray(a, shape);
    made.push(s);
    return s;
  };
  try {
    return fn(mk);
  } finally {
    for (const s of made) B.dispose(s);
  }
}
