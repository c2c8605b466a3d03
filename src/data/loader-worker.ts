/**
 * The loader's worker thread: builds the x of requested batches (augmentation + normalisation) from the split's
 * pixels, which it shares with the main thread through a SharedArrayBuffer. Holds no randomness of its own:
 * every choice is a function of (seed, epoch, sample index), so it computes exactly what the main thread would.
 * Started by loader.ts; not an entry point for anything else.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { AugmentOptions, buildBatchX } from './augment';

export interface WorkerInit {
  images: Uint8Array;
  seed: number;
  augment: AugmentOptions | null;
}

export interface WorkerRequest {
  id: number;
  epoch: number;
  indices: Int32Array;
}

export type WorkerReply = { id: number; x: Float32Array } | { id: number; error: string };

const init = workerData as WorkerInit;
const port = parentPort;
if (port === null) throw new Error('loader-worker: must run as a worker thread (started by loader.ts)');

port.on('message', (req: WorkerRequest) => {
  try {
    const x = buildBatchX(init.images, req.indices, req.epoch, init.seed, init.augment);
    port.postMessage({ id: req.id, x } satisfies WorkerReply, [x.buffer as ArrayBuffer]);
  } catch (err) {
    port.postMessage({ id: req.id, error: err instanceof Error ? err.message : String(err) } satisfies WorkerReply);
  }
});
