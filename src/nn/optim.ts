/**
 * SGD exactly as torch.optim.SGD (momentum, dampening, weight decay added to the gradient, nesterov; see
 * Backend.sgdStep for the update), plus its state for checkpoints. Gradients are set to null after each
 * zeroGrad(), as PyTorch's default set_to_none=True.
 */
import type { Storage } from '../backend/backend';
import type { Parameter } from '../tensor/tensor';
import type { StateDict } from '../tensor/host';

export interface SgdOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
  /** names of parameters that get no weight decay (PyTorch: a second param group with weight_decay 0) */
  noDecay?: Iterable<string>;
}

/** Throws `op: NAME must be a number >= 0, received v` unless v is a finite number >= 0. */
function checkNonNegative(op: string, name: string, v: unknown): void {
  if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0)) throw new Error(`${op}: ${name} must be a number >= 0, received ${String(v)}`);
}

/**
 * The rules of SGD's hyper-parameters, in one place: checked where they enter, when an SGD is built (and when its
 * lr is set) and when `resnet train` reads its flags (`name` turns a field into the flag, `lr` into `--lr`).
 */
export function checkSgdOptions(op: string, o: Required<Omit<SgdOptions, 'noDecay'>>, name: (field: keyof SgdOptions) => string = (f) => f): void {
  for (const k of ['lr', 'momentum', 'dampening', 'weightDecay'] as const) checkNonNegative(op, name(k), o[k]);
  if (o.nesterov && o.momentum <= 0) throw new Error(`${op}: ${name('nesterov')} needs a momentum > 0, received ${name('momentum')} ${o.momentum}`);
  if (o.nesterov && o.dampening !== 0) throw new Error(`${op}: ${name('nesterov')} needs dampening 0, received ${name('dampening')} ${o.dampening}`);
}

/**
 * The parameters that usually get no weight decay (Goyal et al. 2017; timm's default): the one-dimensional ones,
 * which in a convolutional network are the batch-norm weights and biases and the layers' biases.
 */
export function noDecayNames(named: [string, { shape: readonly number[] }][]): string[] {
  return named.filter(([, p]) => p.shape.length <= 1).map(([n]) => n);
}

export class SGD {
  private lrValue: number;
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
  private readonly params: [string, Parameter][];
  private readonly buffers = new Map<Parameter, Storage>();
  private readonly noDecay: Set<string>;

  /** `params`: parameters, or [name, parameter] pairs (names key the momentum buffers in stateDict()). */
  constructor(params: Parameter[] | [string, Parameter][], opts: SgdOptions) {
    this.params = params.map((p, i) => (Array.isArray(p) ? p : [String(i), p]));
    const { noDecay, ...rest } = opts;
    const o = { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, ...rest };
    checkSgdOptions('SGD', o);
    this.noDecay = new Set(noDecay ?? []);
    const names = new Set(this.params.map(([n]) => n));
    for (const n of this.noDecay) if (!names.has(n)) throw new Error(`SGD: noDecay names ${n}, which is not one of the parameters`);
    this.lrValue = o.lr;
    this.momentum = o.momentum;
    this.dampening = o.dampening;
    this.weightDecay = o.weightDecay;
    this.nesterov = o.nesterov;
  }

  /** The learning rate of the next step; a schedule sets it before each one. */
  get lr(): number {
    return this.lrValue;
  }

  set lr(v: number) {
    checkNonNegative('SGD', 'lr', v);
    this.lrValue = v;
  }

  /** Applies one update to every parameter that has a gradient. */
  step(): void {
    const hyper = {
      lr: this.lr, momentum: this.momentum, dampening: this.dampening, weightDecay: this.weightDecay, nesterov: this.nesterov,
    };
    const plain = { ...hyper, weightDecay: 0 };
    for (const [name, p] of this.params) {
      if (!p.grad) continue;
      const be = p.backend;
      let buf = this.buffers.get(p) ?? null;
      const first = this.momentum !== 0 && buf === null;
      if (first) {
        buf = be.zeros(p.shape, p.dtype);
        this.buffers.set(p, buf);
      }
      be.sgdStep(p.storage, p.grad.storage, this.momentum !== 0 ? buf : null, p.shape, this.noDecay.has(name) ? plain : hyper, first);
    }
  }

  /** Frees the gradients (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const [, p] of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Momentum buffers by parameter name (host copies). */
  stateDict(): StateDict {
    const sd: StateDict = new Map();
    for (const [name, p] of this.params) {
      const buf = this.buffers.get(p);
      if (!buf) continue;
      const data = p.backend.toArray(buf, p.shape);
      sd.set(name, { dtype: data instanceof Float64Array ? 'float64' : 'float32', shape: [...p.shape], data });
    }
    return sd;
  }

  loadStateDict(sd: StateDict): void {
    const byName = new Map(this.params);
    for (const key of sd.keys()) {
      if (!byName.has(key)) throw new Error(`SGD.loadStateDict: unexpected momentum buffer ${key}`);
    }
    this.disposeBuffers();
    for (const [name, p] of this.params) {
      const h = sd.get(name);
      if (!h) continue;
      if (h.shape.length !== p.shape.length || h.shape.some((d, i) => d !== p.shape[i])) {
        throw new Error(`SGD.loadStateDict: ${name}: expected [${p.shape.join(',')}], received [${h.shape.join(',')}]`);
      }
      const data = p.dtype === 'float64' ? Float64Array.from(h.data as Float32Array) : Float32Array.from(h.data as Float64Array);
      this.buffers.set(p, p.backend.fromArray(data, p.shape));
    }
  }

  private disposeBuffers(): void {
    for (const [p, s] of this.buffers) p.backend.dispose(s);
    this.buffers.clear();
  }

  /** Frees the momentum buffers and gradients. */
  dispose(): void {
    this.zeroGrad();
    this.disposeBuffers();
  }
}
