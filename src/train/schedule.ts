/**
 * Learning-rate schedules as pure functions of the global step, so that a resumed run gets exactly the rate it would
 * have had (no scheduler state to save).
 * - constant: the seed's.
 * - cosine: lr · ½(1 + cos(π·t/T)) (Loshchilov & Hutter 2017, without restarts), per step.
 * - onecycle: PyTorch's OneCycleLR with cosine annealing (div_factor 25, final_div_factor 1e4): from lr/25 up to lr
 *   over the warm-up fraction, then down to lr/25/1e4.
 */
import type { ScheduleName } from './config';

export function learningRate(
  schedule: ScheduleName, baseLr: number, step: number, totalSteps: number, warmupFraction = 0.25,
): number {
  const T = Math.max(1, totalSteps);
  const t = Math.min(step, T);
  if (schedule === 'constant') return baseLr;
  if (schedule === 'cosine') return baseLr * 0.5 * (1 + Math.cos((Math.PI * t) / T));
  const initial = baseLr / 25;
  const final = initial / 1e4;
  const up = Math.max(1, Math.round(warmupFraction * T) - 1);
  const anneal = (from: number, to: number, frac: number) => to + ((from - to) / 2) * (1 + Math.cos(Math.PI * frac));
  if (t <= up) return anneal(initial, baseLr, t / up);
  return anneal(baseLr, final, Math.min(1, (t - up) / Math.max(1, T - 1 - up)));
}
