/**
 * Tensor: a shape, a dtype and a backend storage, plus what reverse-mode autograd needs (grad, grad_fn).
 *
 * Memory is released deterministically, never by garbage-collection timing:
 * - `t.dispose()` frees a tensor now; disposing twice is harmless.
 * - `tidy(fn)` disposes every tensor (and every autograd node's saved state) created inside fn, except the values
 *   fn returns and tensors marked with `keep()` (parameters, optimizer state, gradients of leaves).
 * Autograd follows micrograd's recipe: `backward()` sorts the graph topologically and applies each node's chain
 * rule in reverse; like PyTorch with retain_graph=False, a node's saved tensors are freed once it has run.
 * No I/O here.
 */
import type { Backend, DType, FloatArray, Storage } from '../backend/backend';
import { numelOf } from '../backend/backend';
import { getBackend } from '../backend';

export interface Disposable {
  dispose(): void;
}

// ---- scopes ----
const scopes: Disposable[][] = [];

function track(d: Disposable): void {
  if (scopes.length > 0) scopes[scopes.length - 1].push(d);
}

/** Marks a tensor to survive the enclosing tidy() scopes. */
export function keep<T extends Tensor>(t: T): T {
  t.kept = true;
  return t;
}

/** Runs fn and disposes everything it created except its result (a tensor, or an array/object of tensors). */
export function tidy<T>(fn: () => T): T {
  const scope: Disposable[] = [];
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  const survivors = new Set<unknown>();
  collectTensors(result, survivors);
  for (const d of scope) {
    if (survivors.has(d)) {
      track(d); // hand the result to the enclosing scope
    } else if (!(d instanceof Tensor && d.kept)) {
      d.dispose();
    }
  }
  return result;
}

function collectTensors(v: unknown, out: Set<unknown>): void {
  if (v instanceof Tensor) out.add(v);
  else if (Array.isArray(v)) for (const x of v) collectTensors(x, out);
  else if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    for (const x of Object.values(v)) collectTensors(x, out);
  }
}

// ---- grad mode ----
let gradEnabled = true;

/** Runs fn without recording autograd graphs (inference, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

// ---- autograd nodes ----
/**
 * One recorded operation. `backward(dy)` returns one gradient per input (null where the input needs none);
 * the returned tensors are owned by the engine. `release()` frees what the forward pass saved.
 */
export class Node implements Disposable {
  private released = false;
  constructor(
    readonly name: string,
    readonly inputs: readonly Tensor[],
    readonly backwardFn: (dy: Tensor) => (Tensor | null)[],
    private readonly releaseFn: () => void = () => {},
  ) {
    track(this);
  }

  dispose(): void {
    if (this.released) return;
    this.released = true;
    this.releaseFn();
  }

  get isReleased(): boolean {
    return this.released;
  }
}

// ---- tensors ----
export class Tensor implements Disposable {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly backend: Backend;
  requiresGrad: boolean;
  grad: Tensor | null = null;
  gradFn: Node | null = null;
  /** survives tidy() scopes */
  kept = false;
  private storageRef: Storage | null;

  constructor(storage: Storage, shape: readonly number[], backend: Backend, requiresGrad = false) {
    if (storage.numel !== numelOf(shape)) {
      throw new Error(`Tensor: storage holds ${storage.numel} elements, shape [${shape.join(',')}] needs ${numelOf(shape)}`);
    }
    this.storageRef = storage;
    this.shape = [...shape];
    this.dtype = storage.dtype;
    this.backend = backend;
    this.requiresGrad = requiresGrad;
    track(this);
  }

  /** A new tensor holding a copy of `data` (row-major), on `backend` or the default one. */
  static fromArray(data: FloatArray | number[], shape: readonly number[], backend: Backend = getBackend()): Tensor {
    const arr = Array.isArray(data) ? Float32Array.from(data) : data;
    if (arr.length !== numelOf(shape)) {
      throw new Error(`Tensor.fromArray: ${arr.length} values do not fill shape [${shape.join(',')}]`);
    }
    return new Tensor(backend.fromArray(arr, shape), shape, backend);
  }

  static zeros(shape: readonly number[], dtype: DType = 'float32', backend: Backend = getBackend()): Tensor {
    return new Tensor(backend.zeros(shape, dtype), shape, backend);
  }

  get storage(): Storage {
    if (!this.storageRef) throw new Error(`Tensor [${this.shape.join(',')}]: used after dispose()`);
    return this.storageRef;
  }

  get isDisposed(): boolean {
    return this.storageRef === null;
  }

  get numel(): number {
    return numelOf(this.shape);
  }

  /** Plain row-major copy of the values. */
  toArray(): FloatArray {
    return this.backend.toArray(this.storage, this.shape);
  }

  /** The value of a one-element tensor. */
  item(): number {
    if (this.numel !== 1) throw new Error(`Tensor.item: expected one element, tensor has shape [${this.shape.join(',')}]`);
    return this.toArray()[0];
  }

  /** Swaps in new contents (same shape and dtype), freeing the old storage; used to load weights in place. */
  replaceStorage(s: Storage): void {
    if (s.numel !== this.numel || s.dtype !== this.dtype) {
      throw new Error(`Tensor.replaceStorage: expected ${this.numel} ${this.dtype} elements, received ${s.numel} ${s.dtype}`);
    }
    this.dispose();
    this.storageRef = s;
  }

  dispose(): void {
    if (this.storageRef) {
      this.backend.dispose(this.storageRef);
      this.storageRef = null;
    }
  }

  /** Reverse-mode differentiation from this tensor (a scalar unless `gradOutput` is given). */
  backward(gradOutput?: Tensor): void {
    runBackward(this, gradOutput);
  }
}

/** A trainable tensor: requires grad and is kept across tidy() scopes. */
export class Parameter extends Tensor {
  constructor(storage: Storage, shape: readonly number[], backend: Backend) {
    super(storage, shape, backend, true);
    this.kept = true;
  }

  static override fromArray(data: FloatArray, shape: readonly number[], backend: Backend = getBackend()): Parameter {
    return new Parameter(backend.fromArray(data, shape), shape, backend);
  }
}

/** Creates an op's output tensor and, when a gradient is needed, its graph node. */
export function makeResult(
  name: string,
  storage: Storage,
  shape: readonly number[],
  backend: Backend,
  inputs: readonly Tensor[],
  backwardFn: (dy: Tensor) => (Tensor | null)[],
  release?: () => void,
): Tensor {
  const needsGrad = gradEnabled && inputs.some((t) => t.requiresGrad);
  const out = new Tensor(storage, shape, backend, needsGrad);
  if (needsGrad) out.gradFn = new Node(name, inputs, backwardFn, release);
  else release?.();
  return out;
}

function topoSort(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // iterative DFS (ResNet graphs are shallow, but user graphs may not be)
  const stack: [Tensor, boolean][] = [[root, false]];
  while (stack.length > 0) {
    const [t, expanded] = stack.pop()!;
    if (expanded) {
      order.push(t);
      continue;
    }
    if (seen.has(t)) continue;
    seen.add(t);
    stack.push([t, true]);
    for (const inp of t.gradFn?.inputs ?? []) if (inp.requiresGrad && !seen.has(inp)) stack.push([inp, false]);
  }
  return order;
}

function runBackward(root: Tensor, gradOutput?: Tensor): void {
  if (!root.requiresGrad) throw new Error('backward: tensor does not require grad (was it computed under noGrad?)');
  if (!gradOutput && root.numel !== 1) {
    throw new Error(`backward: gradient can be implicitly created only for scalars, tensor has shape [${root.shape.join(',')}]`);
  }
  const one = root.dtype === 'float64' ? Float64Array.of(1) : Float32Array.of(1);
  const grads = new Map<Tensor, Tensor>();
  grads.set(root, gradOutput ?? Tensor.fromArray(one, root.shape, root.backend));
  const order = topoSort(root);
  noGrad(() => {
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      const dy = grads.get(t);
      if (!dy) continue;
      grads.delete(t);
      if (t.gradFn) applyNode(t.gradFn, dy, grads, gradOutput);
      else accumulateLeafGrad(t, dy);
    }
  });
}

/**
 * Runs one node's chain rule and routes the input gradients. A backward function may return `dy` itself or the
 * same tensor for several inputs (add): the engine copies where a tensor would otherwise be shared, and disposes
 * every gradient it did not hand on.
 */
function applyNode(node: Node, dy: Tensor, grads: Map<Tensor, Tensor>, gradOutput?: Tensor): void {
  if (node.isReleased) throw new Error(`backward: the graph of ${node.name} was already freed (backward called twice?)`);
  const dxs = node.backwardFn(dy);
  node.dispose();
  const handedOn = new Set<Tensor>();
  node.inputs.forEach((inp, k) => {
    let g = dxs[k];
    if (!g || !inp.requiresGrad) return;
    const prev = grads.get(inp);
    if (prev) {
      inp.backend.addInPlace(prev.storage, g.storage, inp.shape);
      return;
    }
    if (handedOn.has(g) || g === gradOutput) g = new Tensor(inp.backend.scale(g.storage, 1, inp.shape), inp.shape, inp.backend);
    handedOn.add(g);
    grads.set(inp, g);
  });
  for (const g of new Set([dy, ...dxs])) {
    if (g && !handedOn.has(g) && g !== gradOutput) g.dispose();
  }
}

function accumulateLeafGrad(t: Tensor, dy: Tensor): void {
  if (t.grad && !t.grad.isDisposed) {
    t.backend.addInPlace(t.grad.storage, dy.storage, t.shape);
    dy.dispose();
  } else {
    t.grad = keep(dy);
  }
}
