/**
 * An exponential moving average (EMA) of a model's weights, kept beside the training weights and updated after every
 * optimizer step (Polyak & Juditsky 1992; as torch-ema and timm's ModelEma do). For every parameter and for the
 * batch-norm running buffers (running_mean, running_var):
 *
 *     ema ← d_n·ema + (1 − d_n)·p,     d_n = min(decay, (1 + n) / (10 + n)),
 *
 * n the number of updates so far, this one included (1 for the first step after the EMA started). The warm-up of
 * d_n is torch-ema's: the first updates follow the weights closely (d_1 = 2/11, d_10 = 11/20, d_90 = 0.91), so the
 * average is not dominated by the random initialisation for the first ~1/(1 − decay) steps; with decay 0.999 the
 * warm-up ends at n = 8,991 (~19 epochs of 391 steps) and the average then spans the last ~1,000 steps.
 * num_batches_tracked is copied, not averaged.
 *
 * The average lives in backend storages beside the weights: each update is two scales and an in-place add per
 * tensor (float32 in the native backend, each product and the sum rounded once), with nothing copied to the host.
 * Measured on the seed's ResNet-18 (11.2 M parameters, native backend, a busy 2-core AVX2 machine): 16-25 ms per
 * step, against a ~1.5 s training step. A host copy (stateDict) is made only for checkpoints and evaluation.
 *
 * What it is not: the evaluation with the averaged weights (trainer.ts loads stateDict() into a second model) or
 * the checkpoint format (run/checkpoint-format.ts stores the average as its own tensor table, `ema`).
 */
import type { Backend, Storage } from '../backend/backend';
import type { Module } from '../nn/module';
import { BatchNorm2d } from '../nn/layers';
import type { Tensor } from '../tensor';
import { hostInt64Scalar, type HostTensor, type StateDict } from '../tensor/host';

/** The decay of update n (1-based): the configured decay, lowered during the warm-up. */
export function emaDecayAt(decay: number, n: number): number {
  return Math.min(decay, (1 + n) / (10 + n));
}

/** One averaged tensor: the live one it follows (read at each update: its storage may be replaced) and the average. */
interface Slot { key: string; live: Tensor; avg: Storage }

/** The EMA of one model's weights and batch-norm statistics. */
export class WeightEma {
  private constructor(
    readonly decay: number,
    /** updates done so far (the n of the next update is updates + 1) */
    private n: number,
    private readonly slots: Slot[],
    /** num_batches_tracked of each batch-norm layer, copied at each update */
    private readonly counters: { key: string; bn: BatchNorm2d; value: number }[],
    /** every key of the model's state dict, in its order */
    private readonly order: string[],
  ) {}

  /** An average that starts at the model's current weights (update count 0). */
  static of(model: Module, decay: number): WeightEma {
    return WeightEma.fromState(model, decay, model.stateDict(), 0);
  }

  /** An average restored from a checkpoint: its state dict (keys and shapes of the model's) and update count. */
  static fromState(model: Module, decay: number, state: StateDict, updates: number): WeightEma {
    if (!(Number.isFinite(decay) && decay >= 0 && decay < 1)) throw new Error(`WeightEma: expected a decay in [0, 1), received ${decay}`);
    if (!(Number.isSafeInteger(updates) && updates >= 0)) throw new Error(`WeightEma: expected an update count >= 0, received ${updates}`);
    const live = liveState(model);
    const order = [...model.stateDict().keys()];
    const unknown = order.filter((k) => !live.tensors.has(k) && !live.counters.has(k));
    if (unknown.length) throw new Error(`WeightEma: no rule to average ${unknown.join(', ')} (only parameters and batch-norm state)`);
    const missing = order.filter((k) => !state.has(k));
    if (missing.length) throw new Error(`WeightEma: the saved average lacks ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}`);
    const slots: Slot[] = [];
    for (const [key, t] of live.tensors) {
      const h = state.get(key) as HostTensor;
      if (h.shape.join(',') !== t.shape.join(',') || h.dtype === 'int64') {
        throw new Error(`WeightEma: ${key}: expected a float tensor [${t.shape.join(',')}], received ${h.dtype} [${h.shape.join(',')}]`);
      }
      const data = t.dtype === 'float64' ? Float64Array.from(h.data as Float32Array) : Float32Array.from(h.data as Float64Array);
      slots.push({ key, live: t, avg: t.backend.fromArray(data, t.shape) });
    }
    const counters = [...live.counters].map(([key, bn]) => ({ key, bn, value: Number((state.get(key) as HostTensor).data[0]) }));
    return new WeightEma(decay, updates, slots, counters, order);
  }

  /** Updates done so far. */
  get updates(): number {
    return this.n;
  }

  /** One update, after an optimizer step: ema ← d·ema + (1 − d)·p for every tensor, counters copied. */
  update(): void {
    this.n++;
    this.blend(emaDecayAt(this.decay, this.n), false);
  }

  /**
   * A Lookahead synchronisation (lookahead.ts): avg ← d·avg + (1 − d)·p, then every live tensor is set to the
   * average (p ← avg), counters copied. Counts as an update.
   */
  pull(d: number): void {
    this.n++;
    this.blend(d, true);
  }

  /** avg ← d·avg + (1 − d)·p for every tensor (and, with `writeBack`, p ← avg); counters copied. */
  private blend(d: number, writeBack: boolean): void {
    for (const s of this.slots) {
      const be: Backend = s.live.backend;
      const next = be.scale(s.avg, d, s.live.shape);
      const part = be.scale(s.live.storage, 1 - d, s.live.shape);
      be.addInPlace(next, part, s.live.shape);
      be.dispose(part);
      be.dispose(s.avg);
      s.avg = next;
      if (writeBack) s.live.replaceStorage(be.scale(next, 1, s.live.shape));
    }
    for (const c of this.counters) c.value = c.bn.numBatchesTracked;
  }

  /** A host copy of the average, keyed and ordered as the model's state dict (load it into a model of the same spec). */
  stateDict(): StateDict {
    const byKey = new Map<string, HostTensor>();
    for (const s of this.slots) {
      const data = s.live.backend.toArray(s.avg, s.live.shape);
      byKey.set(s.key, { dtype: data instanceof Float64Array ? 'float64' : 'float32', shape: [...s.live.shape], data });
    }
    for (const c of this.counters) byKey.set(c.key, hostInt64Scalar(c.value));
    return new Map(this.order.map((k) => [k, byKey.get(k) as HostTensor]));
  }

  dispose(): void {
    for (const s of this.slots) s.live.backend.dispose(s.avg);
    this.slots.length = 0;
  }
}

/**
 * The moving average a training run starts with, when `decay` > 0: the checkpoint's (`saved`, a resume), or a new
 * one from the model's weights as they are (a new run: saved null; a forced resume of a checkpoint without one:
 * saved undefined, said in a warning). A checkpoint's average resumed with another decay (forced) keeps its values
 * and update count and goes on with the new decay. With decay 0, a checkpoint's average is dropped, with a warning.
 */
export function emaForRun(
  model: Module, decay: number, saved: { state: StateDict; updates: number } | null | undefined, warn: (m: string) => void,
): WeightEma | null {
  if (!(decay > 0)) {
    if (saved) warn('the checkpoint holds a moving average of the weights; this run keeps none (--ema 0), so it is dropped');
    return null;
  }
  if (saved) return WeightEma.fromState(model, decay, saved.state, saved.updates);
  if (saved === undefined) warn(`the checkpoint holds no moving average of the weights: --ema ${decay} starts one from its weights`);
  return WeightEma.of(model, decay);
}

/** The model's parameters and batch-norm buffers by state-dict key, and its batch-norm layers by counter key. */
function liveState(model: Module): { tensors: Map<string, Tensor>; counters: Map<string, BatchNorm2d> } {
  const tensors = new Map<string, Tensor>(model.namedParameters());
  const counters = new Map<string, BatchNorm2d>();
  const visit = (m: Module, prefix: string): void => {
    if (m instanceof BatchNorm2d) {
      tensors.set(`${prefix}running_mean`, m.runningMean);
      tensors.set(`${prefix}running_var`, m.runningVar);
      counters.set(`${prefix}num_batches_tracked`, m);
    }
    for (const [name, child] of m.namedChildren()) visit(child, `${prefix}${name}.`);
  };
  visit(model, '');
  return { tensors, counters };
}
