/**
 * Decoding for `resnet predict` on many files: a few worker threads (decode-worker.ts) that each take whole
 * batches of file names and return their preprocessed inputs, or, for short lists, the same work on this
 * thread (a worker's start-up costs more than decoding a handful of files).
 *
 * What it is not: a scheduler. Batches go to the workers in turn; the caller decides how many are in flight.
 * A worker that fails or exits turns its pending batches, and later ones, into per-file errors that say so:
 * the caller still reports every file.
 */
import { WorkerRequests, startScriptWorker } from '../util/worker';
import { DecodedBatch, decodeBatch } from './read-input';
import type { DecodeReply, DecodeRequest } from './decode-worker';

export interface BatchDecoder {
  decode(files: readonly string[]): Promise<DecodedBatch>;
  close(): Promise<void>;
}


/** Every file of the batch failed for the same reason (the worker is gone). */
function failedBatch(files: readonly string[], reason: string): DecodedBatch {
  return { x: new Float32Array(0), errors: files.map(() => reason) };
}

/** One decode thread (decode-worker.ts); a failed or ended thread turns its batches into per-file errors. */
class DecodeWorker {
  private readonly requests = new WorkerRequests<DecodeReply>(startScriptWorker(__dirname, 'decode-worker', __filename.endsWith('.ts')), 'decode worker');

  get size(): number {
    return this.requests.size;
  }

  async decode(files: readonly string[]): Promise<DecodedBatch> {
    try {
      const m = await this.requests.request({ files: [...files] } satisfies Omit<DecodeRequest, 'id'>);
      return 'error' in m ? failedBatch(files, `decode worker: ${m.error}`) : { x: m.x, errors: m.errors };
    } catch (e) {
      return failedBatch(files, e instanceof Error ? e.message : String(e));
    }
  }

  close(): Promise<void> {
    return this.requests.close('decode worker closed');
  }
}

/** `workers` threads (0: decode on this thread). Each batch goes to the worker with the fewest pending. */
export function startDecoder(workers: number): BatchDecoder {
  if (workers === 0) return { decode: decodeBatch, close: async () => {} };
  const pool = Array.from({ length: workers }, () => new DecodeWorker());
  return {
    decode(files: readonly string[]): Promise<DecodedBatch> {
      const w = pool.reduce((a, b) => (b.size < a.size ? b : a));
      return w.decode(files);
    },
    async close(): Promise<void> {
      await Promise.all(pool.map((w) => w.close()));
    },
  };
}
