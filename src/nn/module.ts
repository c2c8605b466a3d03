/**
 * Module: PyTorch's nn.Module in miniature. Parameters, buffers and child modules are registered in order, so
 * `stateDict()` lists keys exactly as PyTorch's state_dict() does (own parameters, own buffers, then children,
 * depth first), with dotted names such as `layer1.0.left.1.running_mean`.
 */
import type { Backend } from '../backend/backend';
import { Parameter, Tensor } from '../tensor/tensor';
import type { HostTensor, StateDict } from '../tensor/host';
import { hostInt64Scalar } from '../tensor/host';

export interface LoadResult {
  missing: string[];
  unexpected: string[];
  /** "key: expected [..], received [..]" */
  mismatched: string[];
}

export abstract class Module {
  training = true;
  private readonly params = new Map<string, Parameter>();
  private readonly buffers = new Map<string, Tensor>();
  /** integer buffers held as JS numbers and exported as int64 (BatchNorm's num_batches_tracked) */
  private readonly counters = new Map<string, { get: () => number; set: (v: number) => void }>();
  private readonly children = new Map<string, Module>();

  abstract forward(x: Tensor): Tensor;

  protected registerParameter<P extends Parameter>(name: string, p: P): P {
    this.params.set(name, p);
    return p;
  }

  protected registerBuffer<T extends Tensor>(name: string, t: T): T {
    t.kept = true;
    this.buffers.set(name, t);
    return t;
  }

  protected registerCounter(name: string, get: () => number, set: (v: number) => void): void {
    this.counters.set(name, { get, set });
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  namedChildren(): [string, Module][] {
    return [...this.children.entries()];
  }

  namedParameters(prefix = ''): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    for (const [n, p] of this.params) out.push([prefix + n, p]);
    for (const [n, m] of this.children) out.push(...m.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Every entry of the state dict with a getter and a setter, in PyTorch's order. */
  private entries(prefix = ''): { key: string; tensor?: Tensor; counter?: { get: () => number; set: (v: number) => void } }[] {
    const out: { key: string; tensor?: Tensor; counter?: { get: () => number; set: (v: number) => void } }[] = [];
    for (const [n, p] of this.params) out.push({ key: prefix + n, tensor: p });
    for (const [n, b] of this.buffers) out.push({ key: prefix + n, tensor: b });
    for (const [n, c] of this.counters) out.push({ key: prefix + n, counter: c });
    for (const [n, m] of this.children) out.push(...m.entries(`${prefix}${n}.`));
    return out;
  }

  train(mode = true): this {
    this.training = mode;
    for (const m of this.children.values()) m.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** A host copy of every parameter and buffer, keyed as PyTorch's state_dict(). */
  stateDict(): StateDict {
    const sd: StateDict = new Map();
    for (const e of this.entries()) {
      if (e.tensor) {
        const data = e.tensor.toArray();
        sd.set(e.key, { dtype: data instanceof Float64Array ? 'float64' : 'float32', shape: [...e.tensor.shape], data });
      } else if (e.counter) {
        sd.set(e.key, hostInt64Scalar(e.counter.get()));
      }
    }
    return sd;
  }

  /**
   * Copies values from a state dict. Lists missing, unexpected and mis-shaped keys; with `strict` (the default)
   * any of them is an error naming the keys, and nothing is modified.
   */
  loadStateDict(sd: StateDict, opts: { strict?: boolean } = {}): LoadResult {
    const strict = opts.strict ?? true;
    const entries = this.entries();
    const known = new Set(entries.map((e) => e.key));
    const res: LoadResult = { missing: [], unexpected: [...sd.keys()].filter((k) => !known.has(k)), mismatched: [] };
    for (const e of entries) {
      const h = sd.get(e.key);
      if (!h) res.missing.push(e.key);
      else if (e.tensor && !sameShape(h.shape, e.tensor.shape)) {
        res.mismatched.push(`${e.key}: expected [${e.tensor.shape.join(',')}], received [${h.shape.join(',')}]`);
      }
    }
    if (strict && (res.missing.length || res.unexpected.length || res.mismatched.length)) {
      throw new Error(`loadStateDict: ${describeLoad(res)}`);
    }
    for (const e of entries) {
      const h = sd.get(e.key);
      if (!h || res.mismatched.some((m) => m.startsWith(`${e.key}:`))) continue;
      if (e.tensor) copyInto(e.tensor, h, e.key);
      else if (e.counter) e.counter.set(Number(h.data[0]));
    }
    return res;
  }

  /** Frees every parameter and buffer. */
  dispose(): void {
    for (const e of this.entries()) e.tensor?.dispose();
  }

  /** The backend holding this module's tensors. */
  get backend(): Backend {
    const first = this.entries().find((e) => e.tensor);
    if (!first?.tensor) throw new Error('Module.backend: module has no tensors');
    return first.tensor.backend;
  }
}

export function describeLoad(r: LoadResult): string {
  const parts: string[] = [];
  if (r.missing.length) parts.push(`missing keys: ${firstFew(r.missing, ', ')}`);
  if (r.unexpected.length) parts.push(`unexpected keys: ${firstFew(r.unexpected, ', ')}`);
  if (r.mismatched.length) parts.push(`mis-shaped keys: ${firstFew(r.mismatched, '; ')}`);
  return parts.join('; ') || 'ok';
}

/** The first 5 items and a count of the rest: weights of another model would otherwise list 100+ keys. */
export function firstFew(items: readonly string[], sep: string): string {
  const shown = 5;
  if (items.length <= shown) return items.join(sep);
  return `${items.slice(0, shown).join(sep)}${sep}and ${items.length - shown} more (${items.length} in all)`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Replaces a tensor's storage contents with host values (converted to the tensor's dtype). */
function copyInto(t: Tensor, h: HostTensor, key: string): void {
  if (h.dtype === 'int64') throw new Error(`loadStateDict: ${key} holds int64 values, expected floating point`);
  const data = t.dtype === 'float64' ? Float64Array.from(h.data as Float32Array) : Float32Array.from(h.data as Float64Array);
  // the tensor object stays the same: optimizers hold references to parameters
  t.replaceStorage(t.backend.fromArray(data, t.shape));
}
