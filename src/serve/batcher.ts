/**
 * Dynamic batching for `resnet serve`: requests that arrive together are classified in one forward pass, as
 * TorchServe's batch_size/max_batch_delay and Triton's dynamic batcher do. A request waits at most `delayMs`
 * for others to join it (or less, once `maxBatch` are waiting); while a batch runs, new requests gather for the
 * next one, which starts as soon as the running one ends.
 *
 * What it is not: a bound on work. The server admits a request into the batcher only with an inference slot
 * (ConcurrencyLimiter), so the queue never holds more than that many.
 * Numbers: a batch of one is the same forward as classifyInput (bitwise equal to `resnet predict`); a larger
 * batch agrees to float32 rounding (the convolution kernels are chosen per batch size), unless the convolution
 * algorithm is fixed (RESNET_CONV_ALGO=deterministic), where the numbers are equal.
 * Batch sizes: a batch is padded (with zero inputs) to the next of a few sizes, the powers of two below maxBatch
 * and maxBatch itself, because the engine creates, and under the benchmark policy times, its convolutions once per
 * batch size: 32 sizes would each pay that on their first use, 6 pay it once (or at start-up: warm-up).
 * A batch that fails as a whole (the model rejected it) is run again one input at a time, so that one input
 * the model cannot classify fails alone; an engine that is gone (EngineUnavailableError) fails the batch at once.
 */
import type { Prediction } from '../predict/prediction';
import { EngineUnavailableError, type InferenceEngine } from './engine';

export const DEFAULT_MAX_BATCH = 32;
export const DEFAULT_BATCH_DELAY_MS = 5;

/** The sizes a batch is padded to: 1, 2, 4, ... below maxBatch, then maxBatch. */
export function batchSizes(maxBatch: number): number[] {
  const sizes: number[] = [];
  for (let n = 1; n < maxBatch; n *= 2) sizes.push(n);
  return [...sizes, maxBatch];
}

export interface BatcherOptions {
  /** the most inputs one forward pass takes */
  readonly maxBatch?: number;
  /** how long the first request of a batch waits for others, in milliseconds (0: only those already waiting) */
  readonly delayMs?: number;
}

interface Waiting {
  readonly x: Float32Array;
  readonly resolve: (p: Prediction) => void;
  readonly reject: (e: Error) => void;
}

export interface BatcherStats {
  /** requests waiting for a batch */
  readonly queued: number;
  /** requests in the batch being classified now */
  readonly running: number;
  /** batches run so far, and the requests they held */
  readonly batches: number;
  readonly batched: number;
  /** the largest batch so far */
  readonly largest: number;
}

export class DynamicBatcher {
  readonly maxBatch: number;
  readonly delayMs: number;
  private readonly queue: Waiting[] = [];
  private timer: NodeJS.Timeout | null = null;
  private runningCount = 0;
  private batchCount = 0;
  private batchedCount = 0;
  private largestBatch = 0;
  private closed: Error | null = null;
  private readonly sizes: number[];

  constructor(private readonly engine: InferenceEngine, opts: BatcherOptions = {}) {
    this.maxBatch = opts.maxBatch ?? DEFAULT_MAX_BATCH;
    this.delayMs = opts.delayMs ?? DEFAULT_BATCH_DELAY_MS;
    if (!Number.isInteger(this.maxBatch) || this.maxBatch < 1) {
      throw new Error(`DynamicBatcher: expected maxBatch to be a positive integer, received ${this.maxBatch}`);
    }
    if (!Number.isFinite(this.delayMs) || this.delayMs < 0) {
      throw new Error(`DynamicBatcher: expected delayMs to be a non-negative number of milliseconds, received ${this.delayMs}`);
    }
    this.sizes = batchSizes(this.maxBatch);
  }

  stats(): BatcherStats {
    return { queued: this.queue.length, running: this.runningCount, batches: this.batchCount, batched: this.batchedCount, largest: this.largestBatch };
  }

  /** Classifies one preprocessed input ([1,3,32,32]) in the next batch. */
  classify(x: Float32Array): Promise<Prediction> {
    if (this.closed) return Promise.reject(this.closed);
    return new Promise<Prediction>((resolve, reject) => {
      this.queue.push({ x, resolve, reject });
      this.schedule();
    });
  }

  /** Fails what is waiting (and later requests) with `reason`; a batch already running still ends. */
  close(reason: Error): void {
    this.closed = reason;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const w of this.queue.splice(0)) w.reject(reason);
  }

  private schedule(): void {
    if (this.runningCount > 0 || this.queue.length === 0) return; // the running batch's end starts the next
    if (this.queue.length >= this.maxBatch || this.delayMs === 0) {
      this.startBatch();
    } else if (this.timer === null) {
      this.timer = setTimeout(() => this.startBatch(), this.delayMs);
    }
  }

  private startBatch(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.queue.splice(0, this.maxBatch);
    if (batch.length === 0) return;
    this.runningCount = batch.length;
    this.batchCount++;
    this.batchedCount += batch.length;
    this.largestBatch = Math.max(this.largestBatch, batch.length);
    void this.runBatch(batch).finally(() => {
      this.runningCount = 0;
      // whoever gathered meanwhile has waited long enough: their batch starts now
      if (this.queue.length > 0) this.startBatch();
    });
  }

  private async runBatch(batch: Waiting[]): Promise<void> {
    const per = batch[0].x.length;
    const padded = this.sizes.find((n) => n >= batch.length) as number;
    const x = new Float32Array(per * padded); // the padding rows stay 0
    batch.forEach((w, i) => x.set(w.x, i * per));
    try {
      const out = await this.engine.classify(x, padded);
      batch.forEach((w, i) => w.resolve(out[i]));
    } catch (err) {
      if (batch.length === 1 || err instanceof EngineUnavailableError) {
        for (const w of batch) w.reject(err as Error);
        return;
      }
      for (const w of batch) {
        await this.engine.classify(w.x, 1).then((out) => w.resolve(out[0]), (e: Error) => w.reject(e));
      }
    }
  }
}
