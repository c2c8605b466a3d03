/**
 * The run log of one training process: the three places a run reports to (TensorBoard event files, metrics.jsonl
 * and the console), behind one object, so that the training loop says what happened once and each sink records it.
 *
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
