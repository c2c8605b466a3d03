/**
 * Progress of a training epoch: a live bar with loss, images/s and ETA on a terminal (cli-progress, on stderr), and
 * plain periodic lines when stderr is not a terminal (CI logs, `> file`), so nothing floods a log.
 */
import { SingleBar } from 'cli-progress';

export class Progress {
  private readonly bar: SingleBar | null;
  private readonly t0: number;
  private images = 0;
  private done_ = 0;
  private readonly start: number;
  private lastPlain: number;

  /** `start`: steps of this epoch already done before this process (a resumed run); `now`: the clock, in ms */
  constructor(private readonly label: string, private readonly total: number, start = 0, private readonly now: () => number = () => performance.now()) {
    this.t0 = now();
    this.lastPlain = this.t0;
    this.done_ = start;
    this.start = start;
    this.bar = process.stderr.isTTY && !process.env.CI
      ? new SingleBar({
        format: `${label} [{bar}] {value}/{total} | loss {loss} | {rate} img/s | ETA {eta_formatted}`,
        barsize: 30, hideCursor: true, clearOnComplete: true, stream: process.stderr, etaBuffer: 50,
      })
      : null;
    this.bar?.start(total, start, { loss: '-', rate: '-' });
  }

  get rate(): number {
    return this.images / ((this.now() - this.t0) / 1000);
  }

  tick(loss: number, n: number): void {
    this.images += n;
    this.done_++;
    if (this.bar) {
      this.bar.update(this.done_, { loss: loss.toFixed(4), rate: this.rate.toFixed(1) });
    } else if (this.now() - this.lastPlain > 30_000) {
      this.lastPlain = this.now();
      process.stderr.write(`${this.label}: ${this.done_}/${this.total} steps, loss ${loss.toFixed(4)}, ${this.rate.toFixed(1)} img/s, ETA ${this.eta().toFixed(0)} s\n`);
    }
  }

  /** Seconds left in the epoch at the pace of the steps run by this process (not those before a resume). */
  eta(): number {
    return ((this.total - this.done_) * (this.now() - this.t0)) / Math.max(1, this.done_ - this.start) / 1000;
  }

  /** A line that must not be overwritten by the bar (the seed's every-100-steps print). */
  line(text: string): void {
    if (this.bar) {
      this.bar.stop();
      process.stdout.write(`${text}\n`);
      this.bar.start(this.total, this.done_, { loss: '-', rate: this.rate.toFixed(1) });
    } else {
      process.stdout.write(`${text}\n`);
    }
  }

  done(): void {
    this.bar?.stop();
  }
}
