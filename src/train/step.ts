/**
 * One training step: forward, cross-entropy, backward, optimizer step and zeroGrad, inside tidy so that every
 * intermediate tensor (activations, gradients' temporaries, the loss) is freed before it returns. The trainer,
 * `resnet bench` and the golden tests all step through this function, so that they measure and check the same step.
 *
 * A loss that is not finite applies no update (no backward, no optimizer step): the caller decides what a diverged
 * step means (the trainer stops the run, keeping its last good checkpoint).
 * What it is not: the training loop (trainer.ts), the data pipeline or the learning-rate schedule.
 */
import type { SGD } from '../nn/optim';
import { crossEntropy, tidy, type Tensor } from '../tensor';

export interface StepOptions {
  /** label smoothing of the cross-entropy (default 0) */
  labelSmoothing?: number;
  /**
   * Called with the batch's logits after the update, inside tidy (the logits are freed when the step returns), and only
   * when the loss is finite: e.g. to count correct predictions.
   */
  onLogits?: (logits: Tensor) => void;
}

/** One SGD step of `model` on the batch (x [N,C,H,W], y the N labels); returns the batch's mean loss. */
export function trainStep(
  model: { forward(x: Tensor): Tensor }, opt: SGD, x: Tensor, y: Int32Array, opts: StepOptions = {},
): number {
  const value = tidy(() => {
    const logits = model.forward(x);
    const loss = crossEntropy(logits, y, { labelSmoothing: opts.labelSmoothing ?? 0 });
    const v = loss.item();
    if (!Number.isFinite(v)) return v;
    loss.backward();
    opt.step();
    opts.onLogits?.(logits);
    return v;
  });
  opt.zeroGrad();
  return value;
}
