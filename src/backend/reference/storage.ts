/**
 * Reference backend: storages and input validation shared by every kernel family.
 *
 * What it is: a `RefStorage` wraps one plain row-major Float32Array or Float64Array; helpers check that an
 * argument is a live storage of this backend with the expected dtype and element count, and that a shape has
 * the expected rank. What it is not: a tensor (no shape is stored; the caller passes shapes to each kernel).
 * References: src/backend/backend.ts (the contract); errors name the operation, what was expected and what was
 * received.
 */
import type { DType, FloatArray, Shape, Storage } from '../backend';
import { numelOf } from '../backend';

export const REFERENCE_NAME = 'reference';

export class RefStorage implements Storage {
  readonly backend = REFERENCE_NAME;
  readonly dtype: DType;
  readonly numel: number;
  private buf: FloatArray | null;

  /** Takes ownership of `data` (no copy). */
  constructor(data: FloatArray) {
    this.buf = data;
    this.dtype = data instanceof Float64Array ? 'float64' : 'float32';
    this.numel = data.length;
  }

  get disposed(): boolean {
    return this.buf === null;
  }

  /** The live buffer; throws when disposed. `op` names the caller for the message. */
  dataFor(op: string, name: string): FloatArray {
    if (this.buf === null) throw new Error(`${op}: ${name} is a disposed storage (using a storage after dispose is an error)`);
    return this.buf;
  }

  release(): void {
    this.buf = null;
  }
}

/** A new zero-filled array of the given dtype. */
export function newArray(dtype: DType, numel: number): FloatArray {
  return dtype === 'float64' ? new Float64Array(numel) : new Float32Array(numel);
}

/** A new storage of the given dtype, filled from `values` (doubles are rounded to float32 if needed). */
export function storageFrom(dtype: DType, values: ArrayLike<number>): RefStorage {
  const out = newArray(dtype, values.length);
  out.set(values);
  return new RefStorage(out);
}

export function fmtShape(shape: Shape): string {
  return `[${shape.join(',')}]`;
}

/**
 * Checks that `shape` has the rank of `letters` (e.g. 'N,C,H,W') and that every dimension is a positive
 * integer: `conv2d: expected x of rank 4 [N,C,H,W], received [3,32,32]`.
 */
export function expectShape(op: string, name: string, shape: Shape, letters: string): void {
  const rank = letters.split(',').length;
  if (!Array.isArray(shape) || shape.length !== rank) {
    const got = Array.isArray(shape) ? fmtShape(shape) : String(shape);
    throw new Error(`${op}: expected ${name} of rank ${rank} [${letters}], received ${got}`);
  }
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 1) {
      throw new Error(`${op}: expected ${name} [${letters}] of positive integer sizes, received ${fmtShape(shape)}`);
    }
  }
}

/** Checks that a shape is a list of non-negative integers (any rank). */
export function expectAnyShape(op: string, name: string, shape: Shape): void {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new Error(`${op}: expected ${name} to be a list of non-negative integers, received ${String(shape)}`);
  }
}

/**
 * Returns the buffer of `s` after checking that it is a live storage of this backend with `numel` elements
 * and, when given, the dtype `dtype` (the dtype of the operation's first input).
 */
export function input(op: string, name: string, s: Storage, numel: number, dtype?: DType): FloatArray {
  if (!(s instanceof RefStorage)) {
    const from = s && typeof s === 'object' && 'backend' in s ? `'${String(s.backend)}'` : typeof s;
    throw new Error(`${op}: expected ${name} to be a storage of the reference backend, received one from ${from}`);
  }
  const data = s.dataFor(op, name);
  if (dtype !== undefined && s.dtype !== dtype) {
    throw new Error(`${op}: expected ${name} of dtype ${dtype} (the dtype of the first input), received ${s.dtype}`);
  }
  if (data.length !== numel) {
    throw new Error(`${op}: expected ${name} with ${numel} elements, received ${data.length}`);
  }
  return data;
}

/** `input` with the element count taken from a shape. */
export function inputOf(op: string, name: string, s: Storage, shape: Shape, dtype?: DType): FloatArray {
  return input(op, name, s, numelOf(shape), dtype);
}

/** Rounds a double to the storage's precision: intermediate values stored by PyTorch kernels are rounded too. */
export function rounderOf(dtype: DType): (v: number) => number {
  return dtype === 'float32' ? Math.fround : (v: number) => v;
}

/** Checks a pair of non-negative (or positive) integers such as a stride or a padding. */
export function expectPair(op: string, name: string, v: readonly [number, number], min: number): void {
  if (!Array.isArray(v) || v.length !== 2 || !v.every((d) => Number.isInteger(d) && d >= min)) {
    throw new Error(`${op}: expected ${name} to be two integers >= ${min}, received ${String(v)}`);
  }
}

// ---- the Backend's memory operations ----

/** Copies plain row-major data into a new storage; the dtype follows the array type. */
export function fromArray(data: FloatArray, shape: Shape): Storage {
  const op = 'fromArray';
  if (!(data instanceof Float32Array || data instanceof Float64Array)) {
    throw new Error(`${op}: expected a Float32Array or Float64Array, received ${Object.prototype.toString.call(data)}`);
  }
  expectAnyShape(op, 'shape', shape);
  if (data.length !== numelOf(shape)) {
    throw new Error(`${op}: expected ${numelOf(shape)} elements for shape ${fmtShape(shape)}, received ${data.length}`);
  }
  return new RefStorage(data.slice());
}

/** A plain row-major copy of the storage's data. */
export function toArray(s: Storage, shape: Shape): FloatArray {
  expectAnyShape('toArray', 'shape', shape);
  return inputOf('toArray', 'storage', s, shape).slice();
}

export function zeros(shape: Shape, dtype: DType): Storage {
  expectAnyShape('zeros', 'shape', shape);
  if (dtype !== 'float32' && dtype !== 'float64') {
    throw new Error(`zeros: expected dtype float32 or float64, received ${String(dtype)}`);
  }
  return new RefStorage(newArray(dtype, numelOf(shape)));
}

/** Releases the buffer; a second dispose is an error like any other use after dispose. */
export function dispose(s: Storage): void {
  input('dispose', 'storage', s, s.numel);
  (s as RefStorage).release();
}

/** A copy of `s` viewed with `toShape`; both shapes must have the storage's element count. */
export function reshape(s: Storage, fromShape: Shape, toShape: Shape): Storage {
  const op = 'reshape';
  expectAnyShape(op, 'fromShape', fromShape);
  expectAnyShape(op, 'toShape', toShape);
  if (numelOf(fromShape) !== numelOf(toShape)) {
    throw new Error(`${op}: expected toShape with ${numelOf(fromShape)} elements (as ${fmtShape(fromShape)}), received ${fmtShape(toShape)}`);
  }
  return new RefStorage(inputOf(op, 'storage', s, fromShape).slice());
}
