/**
 * Upload preprocessing off the server's main thread: one worker thread (preprocess-worker.ts) turns an upload's
 * bytes into the model's input, with the same results and the same ImageDecodeError (code and reason) as
 * preprocessForModel on the main thread, which the server maps to 415/422 as before.
 *
 * What it is: the thread's life. It starts on the first upload, holds the process open only while uploads are in
 * it, and when it fails or exits a new one takes the next upload; the upload that was in it is tried once more in
 * the new thread, then reported as an error (a 500 for that request; the server goes on).
 * warm() starts the thread before the first upload: without it that upload pays the thread's start and its first
 * decode (~140 ms measured on the 2-core Zen 4, against ~1 ms for the uploads after it).
 * What it is not: inference (engine.ts), or a pool: sharp decodes on libuv's threads already, and one thread is
 * enough for the JavaScript resize of one upload at a time per core this machine has to spare.
 */
import sharp from 'sharp';
import { ImageDecodeError } from '../data';
import { WorkerRequests, startScriptWorker } from '../util/worker';
import type { PreprocessReply } from './preprocess-worker';

export interface PreprocessResult {
  readonly x: Float32Array;
  /** the thread that did the work (never the main thread's 0): for tests */
  readonly threadId: number;
}

export class UploadPreprocessor {
  private worker: WorkerRequests<PreprocessReply> | null = null;
  private closed = false;

  constructor(private readonly log?: (msg: string) => void) {}

  private thread(): WorkerRequests<PreprocessReply> {
    if (this.closed) throw new Error('upload preprocessing: closed');
    this.worker ??= new WorkerRequests<PreprocessReply>(
      startScriptWorker(__dirname, 'preprocess-worker', __filename.endsWith('.ts')), 'upload preprocessing thread');
    return this.worker;
  }

  /** The model's input [1,3,32,32] for an upload; throws ImageDecodeError (file "upload") for a bad image. */
  async preprocess(bytes: Uint8Array, maxPixels: number): Promise<PreprocessResult> {
    let reply: PreprocessReply | undefined;
    for (let attempt = 0; reply === undefined; attempt++) {
      const w = this.thread();
      try {
        reply = await w.request({ bytes, maxPixels });
      } catch (err) {
        // the thread failed or exited: the next upload (or this one's second try) gets a fresh one
        if (this.worker === w) this.worker = null;
        const why = err instanceof Error ? err.message : String(err);
        if (this.closed || attempt >= 1) throw new Error(`upload preprocessing: ${why}`, { cause: err });
        this.log?.(`upload preprocessing: ${why}; starting a new thread`);
      }
    }
    if ('x' in reply) return { x: reply.x, threadId: reply.threadId };
    if ('decode' in reply) throw new ImageDecodeError(reply.decode.code, 'upload', reply.decode.reason);
    throw new Error(`upload preprocessing: ${reply.error}`);
  }

  /**
   * Starts the thread and runs one small made-up image (an 8x8 PNG) through it, so that the first upload finds the
   * thread, its modules and the decoder loaded. Returns the thread's id.
   */
  async warm(): Promise<number> {
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 120, g: 60, b: 30 } } }).png().toBuffer();
    return (await this.preprocess(png, 64)).threadId;
  }

  /** For tests: ends the thread as a crash would (uploads in it fail over to a new one), the preprocessor stays open. */
  async endThreadForTest(): Promise<void> {
    const w = this.worker;
    if (w) await w.close('upload preprocessing thread ended (test)');
  }

  /** Ends the thread; uploads still in it fail. */
  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = null;
    if (w) await w.close('upload preprocessing: server closed');
  }
}
