/**
 * Learning-rate schedules as pure functions of the global step, so that a resumed run gets exactly the rate it would
 * have had (no scheduler state to save).
 * - constant: the seed's.
 * - cosine: lr · ½(1 + cos(π·t/T)) (Loshchilov & Hutter 2017, without restarts), per step.
 * - onecycle: PyTorch's OneCycleLR with cosine annealing (div_factor 25, final_div_factor 1e4): from lr/25 up to lr
 *   over the warm-up fraction, then down to lr/25/1e4.
 * - linear: from 0 up to lr over the warm-up fraction, then straight down to 0 at the last step ("budgeted training",
 *   Li et al. 2020: decaying to zero over the budget is what makes a short run good; the shape of Page's DAWNBench
 *   schedule).
 */
import type { ScheduleName } from './config';

export function learningRate(
  schedule: ScheduleName, baseLr: number, step: number, totalSteps: number, warmupFraction = 0.25,
): number {
  const T = Math.max(1, totalSteps);
  const t = Math.min(step, T);
  if (schedule === 'constant') return baseLr;
  if (schedule === 'cosine') return baseLr * 0.5 * (1 + Math.cos((Math.PI * t) / T));
  if (schedule === 'linear') {
    // Step s is the (s+1)-th update: the first warm-up step already moves (lr·1/W), the last one is lr·1/(T-W).
    const w = Math.round(warmupFraction * T);
    if (t < w) return (baseLr * (t + 1)) / w;
    return (baseLr * (T - t)) / Math.max(1, T - w);
  }
  const initial = baseLr / 25;
  const final = initial / 1e4;
  // PyTorch's phase ends: warm-up ends at step pct·T − 1 (a fraction of a step when pct·T is not whole), the
  // annealing at step T − 1.
  const up = Math.max(1e-9, warmupFraction * T - 1);
  const anneal = (from: number, to: number, frac: number) => to + ((from - to) / 2) * (1 + Math.cos(Math.PI * frac));
  if (t <= up) return anneal(initial, baseLr, t / up);
  return anneal(baseLr, final, Math.min(1, (t - up) / Math.max(1e-9, T - 1 - up)));
}
