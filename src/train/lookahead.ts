/**
 * Lookahead (Zhang et al. 2019, "Lookahead Optimizer: k steps forward, 1 step back"), in the form airbench uses for
 * fast CIFAR-10 training (Jordan 2024): a slow copy of the weights (and batch-norm buffers) that every k optimizer
 * steps moves part of the way to the fast weights, which are then reset to it:
 *
 *     slow ← d·slow + (1 − d)·fast,   fast ← slow,     d = 0.95^k · (t / T)³  at step t of T,
 *
 * so it does nothing at the start (d ≈ 0) and pulls harder as the learning rate falls; at the last step d = 1: the
 * run ends on the slow weights. The optimizer's momentum is kept. `--lookahead K` (0: off).
 *
 * The slow copy is a WeightEma (ema.ts) driven by pull(); checkpoints store it (run/checkpoint-format.ts,
 * `lookahead`), so a resumed run continues bit-exactly.
 */
import type { Module } from '../nn/module';
import type { StateDict } from '../tensor/host';
import { WeightEma } from './ema';

/** The per-step decay whose k-th power is the largest pull. */
export const LOOKAHEAD_BASE = 0.95;

/** The d of a synchronisation after step `step` (1-based) of `total`. */
export function lookaheadDecay(k: number, step: number, total: number): number {
  return step >= total ? 1 : LOOKAHEAD_BASE ** k * (step / total) ** 3;
}

export class Lookahead {
  private constructor(readonly k: number, private readonly slow: WeightEma) {}

  /** Slow weights that start at the model's current ones. */
  static of(model: Module, k: number): Lookahead {
    return new Lookahead(checkK(k), WeightEma.of(model, 0));
  }

  /** Slow weights restored from a checkpoint. */
  static fromState(model: Module, k: number, state: StateDict, syncs: number): Lookahead {
    return new Lookahead(checkK(k), WeightEma.fromState(model, 0, state, syncs));
  }

  /** After optimizer step `step` (1-based) of `total`: synchronises when step is a multiple of k or the last. */
  afterStep(step: number, total: number): boolean {
    if (step % this.k !== 0 && step < total) return false;
    this.slow.pull(lookaheadDecay(this.k, step, total));
    return true;
  }

  /** Synchronisations so far. */
  get syncs(): number {
    return this.slow.updates;
  }

  stateDict(): StateDict {
    return this.slow.stateDict();
  }

  dispose(): void {
    this.slow.dispose();
  }
}

function checkK(k: number): number {
  if (!(Number.isInteger(k) && k > 0)) throw new Error(`Lookahead: expected k a positive integer, received ${k}`);
  return k;
}

/**
 * The Lookahead a run starts with when k > 0: the checkpoint's (a resume), or new from the model's weights. A
 * checkpoint's slow weights with k 0 are dropped with a warning; a checkpoint without them (forced resume) starts new ones.
 */
export function lookaheadForRun(
  model: Module, k: number, saved: { state: StateDict; syncs: number } | null | undefined, warn: (m: string) => void,
): Lookahead | null {
  if (!(k > 0)) {
    if (saved) warn('the checkpoint holds Lookahead slow weights; this run has none (--lookahead 0), so they are dropped');
    return null;
  }
  if (saved) return Lookahead.fromState(model, k, saved.state, saved.syncs);
  if (saved === undefined) warn(`the checkpoint holds no Lookahead slow weights: --lookahead ${k} starts them from its weights`);
  return Lookahead.of(model, k);
}
