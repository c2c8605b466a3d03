/**
 * The trainer's divergence checks: a NaN or Inf in a batch's input, in the loss, or in the weights or momentum after an
 * epoch ends the run as 'diverged' (exit code 3) with an error that names where it was found, before anything
 * non-finite is applied, evaluated or saved; the last good checkpoint is kept.
 * What it is not: a recovery (no lr back-off, no skipped batch): a diverged run stops.
 */
import * as path from 'node:path';
import type { Batch } from '../data/loader';
import type { ResNet } from '../models/resnet';
import type { SGD } from '../nn/optim';
import { firstNonFinite } from '../run/checkpoint';

export class DivergedError extends Error {}

/** A non-finite loss: step.ts applied no update. */
export function assertFiniteLoss(loss: number, epochNo: number, step: number, out: string): void {
  if (Number.isFinite(loss)) return;
  throw new DivergedError(`training diverged at epoch ${epochNo}, step ${step + 1}: the loss is ${loss}; ` +
    `no update was applied and the last good checkpoint in ${path.join(out, 'checkpoints')} is kept`);
}

/**
 * A NaN or Inf pixel is refused before the forward pass: a ReLU may turn NaN into 0 (the reference
 * backend's does), so the loss would look finite while the update poisons the weights.
 */
export function assertFiniteInput(batch: Batch, epochNo: number, step: number, out: string): void {
  let i = 0;
  while (i < batch.x.length && Number.isFinite(batch.x[i])) i++;
  if (i === batch.x.length) return;
  const sample = batch.indices[Math.floor(i / (batch.x.length / batch.n))];
  throw new DivergedError(`training diverged at epoch ${epochNo}, step ${step + 1}: the input of training image ${sample} holds ` +
    `${batch.x[i]}; no update was applied and the last good checkpoint in ${path.join(out, 'checkpoints')} is kept`);
}

/** Throws DivergedError naming the first model or optimizer tensor that holds NaN or Inf. */
export function assertFiniteState(model: ResNet, opt: SGD, epochNo: number, step: number, out: string): void {
  const badModel = firstNonFinite(model.stateDict());
  const bad = badModel !== null ? badModel : firstNonFinite(opt.stateDict());
  if (bad === null) return;
  throw new DivergedError(`training diverged in epoch ${epochNo} (after step ${step}): ${badModel !== null ? '' : 'the momentum of '}` +
    `${bad} holds NaN or Inf; the last good checkpoint in ${path.join(out, 'checkpoints')} is kept`);
}
