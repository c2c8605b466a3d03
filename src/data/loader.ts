/**
 * The data loader: a Split cut into batches of normalised NCHW float32, shuffled by a fresh permutation per
 * epoch from (seed, epoch), augmented per sample from (seed, epoch, sample index). With `worker: true` the next
 * two batches are built in a worker thread while the caller computes on the current one; the batch sequence is
 * the same with or without it, bit for bit.
 *
 * Usage: `for await (const b of loader.batches(epoch)) { ... }`; `await loader.close()` ends the worker.
 * A resumed run starts again at an epoch boundary: batches(epoch) depends on nothing but (seed, epoch).
 * Not here: decoding (dataset.ts), augmentation maths (augment.ts).
 * Reference: torch.utils.data.DataLoader (batch_size, shuffle, drop_last semantics).
 */
import { WorkerRequests, startScriptWorker } from '../util/worker';
import { AugmentOptions, buildBatchX } from './augment';
import { epochPermutation, limitIndices } from './split';
import type { Split } from './types';
import type { WorkerInit, WorkerReply, WorkerRequest } from './loader-worker';

export interface LoaderOptions {
  batchSize: number;
  /** a fresh permutation per epoch; otherwise the split's order */
  shuffle: boolean;
  /** training augmentation; { crop: false, flip: false } for evaluation */
  augment: AugmentOptions;
  seed: number;
  /** drop the last batch when it is smaller than batchSize */
  dropLast: boolean;
  /** use only this many samples: a fixed seeded subset, the same every epoch */
  limit?: number;
  /** build batches in a worker thread (default false) */
  worker?: boolean;
}

export interface Batch {
  /** [n,3,32,32] normalised, NCHW */
  x: Float32Array;
  /** class indices */
  y: Int32Array;
  /** which samples of the split these are */
  indices: Int32Array;
  n: number;
}

/** The worker thread (loader-worker.ts) and its pending requests. */
class BatchWorker {
  private readonly requests: WorkerRequests<WorkerReply>;

  constructor(init: WorkerInit) {
    this.requests = new WorkerRequests(startScriptWorker(__dirname, 'loader-worker', __filename.endsWith('.ts'), init), 'loader worker');
  }

  async run(epoch: number, indices: Int32Array): Promise<Float32Array> {
    const m = await this.requests.request({ epoch, indices } satisfies Omit<WorkerRequest, 'id'>);
    if ('error' in m) throw new Error(`loader worker: ${m.error}`);
    return m.x;
  }

  close(): Promise<void> {
    return this.requests.close('loader closed');
  }
}

/** Pixels a worker can read without a copy: the split's own buffer when shared, else a one-time copy. */
function sharedImages(images: Uint8Array): Uint8Array {
  if (images.buffer instanceof SharedArrayBuffer) return images;
  const shared = new Uint8Array(new SharedArrayBuffer(images.length));
  shared.set(images);
  return shared;
}

export class Loader {
  /** samples per epoch (after limit) */
  readonly size: number;
  readonly numBatches: number;
  private readonly subset: Int32Array;
  private readonly augment: AugmentOptions | null;
  private worker: BatchWorker | null = null;

  constructor(
    readonly split: Split,
    readonly opts: LoaderOptions,
  ) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize <= 0) {
      throw new Error(`Loader: expected batchSize a positive integer, received ${opts.batchSize}`);
    }
    this.subset = limitIndices(split.n, opts.limit, opts.seed);
    this.size = this.subset.length;
    this.numBatches = opts.dropLast ? Math.floor(this.size / opts.batchSize) : Math.ceil(this.size / opts.batchSize);
    const a = opts.augment;
    this.augment = a.crop || a.flip || (a.cutout ?? 0) > 0 ? { ...a } : null;
  }

  /** The split indices of an epoch, in batch order. */
  order(epoch: number): Int32Array {
    if (!this.opts.shuffle) return this.subset;
    const perm = epochPermutation(this.size, this.opts.seed, epoch);
    return perm.map((k) => this.subset[k]);
  }

  private batchIndices(order: Int32Array, b: number): Int32Array {
    const bs = this.opts.batchSize;
    return order.slice(b * bs, Math.min((b + 1) * bs, order.length));
  }

  private assemble(indices: Int32Array, x: Float32Array): Batch {
    const y = new Int32Array(indices.length);
    for (let k = 0; k < indices.length; k++) y[k] = this.split.labels[indices[k]];
    return { x, y, indices, n: indices.length };
  }

  /** The batches of one epoch, in order. */
  async *batches(epoch: number): AsyncGenerator<Batch> {
    const order = this.order(epoch);
    if (!this.opts.worker) {
      for (let b = 0; b < this.numBatches; b++) {
        const idx = this.batchIndices(order, b);
        yield this.assemble(idx, buildBatchX(this.split.images, idx, epoch, this.opts.seed, this.augment));
      }
      return;
    }
    this.worker ??= new BatchWorker({ images: sharedImages(this.split.images), seed: this.opts.seed, augment: this.augment });
    const worker = this.worker;
    const ahead: { idx: Int32Array; x: Promise<Float32Array> }[] = [];
    let requested = 0;
    const request = (): void => {
      if (requested >= this.numBatches) return;
      const idx = this.batchIndices(order, requested++);
      const x = worker.run(epoch, idx);
      x.catch(() => undefined); // a prefetched batch the caller never asks for must not be an unhandled rejection
      ahead.push({ idx, x });
    };
    request();
    request();
    while (ahead.length > 0) {
      const next = ahead.shift()!;
      const x = await next.x;
      request();
      yield this.assemble(next.idx, x);
    }
  }

  /** Ends the worker thread, if one was started. */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.close();
  }
}
