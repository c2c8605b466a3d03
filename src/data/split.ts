/**
 * Deterministic carving of splits: a validation split from train (`--val-split N`), a subset for quick runs
 * (`--limit N`), and the seeded permutation both use. Same seed, same split, on any machine.
 * Not stratified (as torch.utils.data.random_split): with CIFAR-10's balanced classes a random 5000 holds
 * close to 500 per class.
 * Not here: per-epoch shuffling (loader.ts).
 */
import { hashSeed, Rng } from '../util/rng';
import { IMAGE_BYTES } from './normalize';
import type { Split } from './types';

const VAL_TAG = 0x76616c31;
const LIMIT_TAG = 0x6c696d31;
const SHUFFLE_TAG = 0x73687566;

/** A Fisher-Yates permutation of 0..n-1 from Rng(seed). */
export function permutation(n: number, seed: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const rng = new Rng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/** The order of samples in an epoch: a permutation from (seed, epoch). */
export function epochPermutation(n: number, seed: number, epoch: number): Int32Array {
  return permutation(n, hashSeed(seed, epoch, SHUFFLE_TAG));
}

/** A new Split holding the given images of `split`, in the given order (pixels in a SharedArrayBuffer). */
export function subsetSplit(split: Split, indices: ArrayLike<number>): Split {
  const n = indices.length;
  const images = new Uint8Array(new SharedArrayBuffer(n * IMAGE_BYTES));
  const labels = new Uint8Array(n);
  const names: string[] | undefined = split.names ? [] : undefined;
  for (let k = 0; k < n; k++) {
    const i = indices[k];
    if (i < 0 || i >= split.n) throw new Error(`subsetSplit: index ${i} outside 0..${split.n - 1}`);
    images.set(split.images.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), k * IMAGE_BYTES);
    labels[k] = split.labels[i];
    names?.push(split.names?.[i] ?? '');
  }
  return { n, images, labels, names };
}

/**
 * Splits `split` into n validation images and the rest, chosen by a permutation from `seed`; both keep the
 * original relative order of their images.
 */
export function splitValidation(split: Split, n: number, seed: number): { train: Split; val: Split } {
  if (!Number.isInteger(n) || n <= 0 || n >= split.n) {
    throw new Error(`splitValidation: expected 0 < n < ${split.n} (the split's size), received ${n}`);
  }
  const perm = permutation(split.n, hashSeed(seed, VAL_TAG));
  const val = Int32Array.from(perm.subarray(0, n)).sort();
  const train = Int32Array.from(perm.subarray(n)).sort();
  return { train: subsetSplit(split, train), val: subsetSplit(split, val) };
}

/** The indices kept by `limit`: the first `limit` of a permutation from `seed`, ascending; all when limit >= n. */
export function limitIndices(n: number, limit: number | undefined, seed: number): Int32Array {
  if (limit === undefined || limit >= n) return Int32Array.from({ length: n }, (_, i) => i);
  if (!Number.isInteger(limit) || limit <= 0) throw new Error(`limit: expected a positive integer, received ${limit}`);
  return Int32Array.from(permutation(n, hashSeed(seed, LIMIT_TAG)).subarray(0, limit)).sort();
}
