/**
 * The decode worker of `resnet predict`: reads and preprocesses batches of image files (read-input.ts) off the
 * main thread, so that decoding the next batches overlaps the forward pass of the current one.
 * Started by decode-pool.ts; not an entry point for anything else.
 */
import { parentPort } from 'node:worker_threads';
import { decodeBatch } from './read-input';

export interface DecodeRequest {
  id: number;
  files: string[];
}

export type DecodeReply = { id: number; x: Float32Array; errors: (string | null)[] } | { id: number; error: string };

const port = parentPort;
if (port === null) throw new Error('decode-worker: must run as a worker thread (started by decode-pool.ts)');

port.on('message', (req: DecodeRequest) => {
  decodeBatch(req.files).then(
    ({ x, errors }) => port.postMessage({ id: req.id, x, errors } satisfies DecodeReply, [x.buffer as ArrayBuffer]),
    (err: unknown) => port.postMessage({ id: req.id, error: err instanceof Error ? err.message : String(err) } satisfies DecodeReply),
  );
});
