/**
 * The upload preprocessing thread of `resnet serve`: decode, RGB, resize to 32x32 (PIL's bicubic, in JavaScript)
 * and normalise one upload (src/data's preprocessForModel), so that the resize of a large photo, tens to
 * hundreds of milliseconds of JavaScript, does not hold up the server's other requests (health checks among them).
 * Started by preprocess.ts; not an entry point for anything else.
 */
import { parentPort, threadId } from 'node:worker_threads';
import { ImageDecodeError, preprocessForModel, type ImageErrorCode } from '../data';

export interface PreprocessRequest {
  id: number;
  bytes: Uint8Array;
  maxPixels: number;
}

export type PreprocessReply =
  | { id: number; x: Float32Array; threadId: number }
  | { id: number; decode: { code: ImageErrorCode; reason: string } }
  | { id: number; error: string };

const port = parentPort;
if (port === null) throw new Error('preprocess-worker: must run as a worker thread (started by src/serve/preprocess.ts)');

port.on('message', (req: PreprocessRequest) => {
  preprocessForModel(req.bytes, { maxPixels: req.maxPixels, name: 'upload' }).then(
    (x) => port.postMessage({ id: req.id, x, threadId } satisfies PreprocessReply, [x.buffer as ArrayBuffer]),
    (err: unknown) => {
      const reply: PreprocessReply = err instanceof ImageDecodeError
        ? { id: req.id, decode: { code: err.code, reason: err.reason } }
        : { id: req.id, error: err instanceof Error ? err.message : String(err) };
      port.postMessage(reply);
    },
  );
});
