/**
 * The run log of one training process: the three places a run reports to (TensorBoard event files, metrics.jsonl
 * and the console), behind one object, so that the training loop says what happened once and each sink records it.
 *
 * Also here: the epoch's summary line for the console (epochSummary).
 * What it is not: the progress bar (progress.ts draws the current epoch) or the checkpoints (run/checkpoint.ts).
 * Each sink's own failures are its own matter: a log that cannot be written warns once and stops, training goes on.
 */
import { MetricsLog } from '../run/metrics';
import { EventWriter } from '../run/tensorboard';

export interface RunLogOptions {
  /** the resumed run's epoch and the first step this process writes (absent for a new run) */
  resume?: { epoch: number; step: number };
  onWarning: (m: string) => void;
  /** the console */
  log: (line: string) => void;
}

export class RunLog {
  private constructor(private readonly events: EventWriter, private readonly metrics: MetricsLog, private readonly log: (l: string) => void) {}

  /**
   * The resume markers name the first step this process writes: TensorBoard drops earlier events with step >= the
   * START step, a metrics reader earlier records with step >= the resume record's (docs/training-files.md). Records
   * at the checkpoint's own step (its last train_loss, its epoch's test scalars) stay: nothing rewrites them.
   */
  static open(out: string, opts: RunLogOptions): RunLog {
    const events = EventWriter.create(out, { purgeStep: opts.resume?.step, onWarning: opts.onWarning });
    const metrics = MetricsLog.open(out, { onWarning: opts.onWarning });
    if (opts.resume) metrics.logResume(opts.resume.epoch, opts.resume.step);
    return new RunLog(events, metrics, opts.log);
  }

  /** A line on the console. */
  say(line: string): void {
    this.log(line);
  }

  /** One training step's loss and learning rate. */
  step(step: number, loss: number, lr: number, epochNo: number): void {
    this.events.addScalar('train_loss', loss, step);
    this.metrics.logStep(step, { loss, lr }, epochNo);
  }

  /** An epoch's figures; the epoch's mean training loss gets its own tag: `train_loss` is the per-step curve. */
  epoch(epochNo: number, step: number, record: Record<string, number>): void {
    for (const [k, v] of Object.entries(record)) if (k !== 'seconds') this.events.addScalar(k === 'train_loss' ? 'train_loss_epoch' : k, v, step);
    this.metrics.logEpoch(epochNo, step, record);
  }

  /** The end of an epoch, once its checkpoint is saved: the event file flushed, the summary on the console. */
  endEpoch(summary: string): void {
    this.events.flush();
    this.log(summary);
  }

  diverged(step: number): void {
    this.events.addScalar('diverged', 1, step);
  }

  close(): void {
    this.events.close();
    this.metrics.close();
  }
}

/**
 * The console line closing an epoch, from its metrics record: train, test (with its TTA accuracy when evaluated),
 * val, the same for the EMA weights when the run keeps them, lr, time, and whether it is the best epoch so far, e.g.
 * `epoch 3/5: train loss 0.9 acc 70.00% | test loss 0.8 acc 72.00% (tta 73.10%) | ema test loss ... | lr 0.05 | 96 s`.
 */
export function epochSummary(epoch: number, epochs: number, r: Record<string, number>, best: boolean): string {
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  const part = (prefix: string, split: string): string => {
    const loss = r[`${prefix}${split}_loss`];
    if (loss === undefined) return '';
    const tta = r[`${prefix}${split}_acc_tta`];
    const name = `${prefix ? 'ema ' : ''}${split}`;
    return ` | ${name} loss ${loss.toFixed(4)} acc ${pct(r[`${prefix}${split}_acc`])}${tta === undefined ? '' : ` (tta ${pct(tta)})`}`;
  };
  return `epoch ${epoch}/${epochs}: train loss ${r.train_loss.toFixed(4)} acc ${pct(r.train_acc)}` +
    part('', 'test') + part('', 'val') + part('ema_', 'test') + part('ema_', 'val') +
    ` | lr ${r.lr.toPrecision(3)} | ${r.seconds.toFixed(0)} s${best ? ' | best' : ''}`;
}
