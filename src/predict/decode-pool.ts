/**
 * Decoding for `resnet predict` on many files: a few worker threads (decode-worker.ts) that each take whole
 * batches of file names and return their preprocessed inputs, or, for short lists, the same work on this
 * thread (a worker's start-up costs more than decoding a handful of files).
 *
 * What it is not: a scheduler. Batches go to the workers in turn; the caller decides how many are in flight.
 * A worker that fails or exits turns its pending batches, and later ones, into per-file errors that say so:
 * the caller still reports every file.
 */
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { DecodedBatch, decodeBatch } from './read-input';
import type { DecodeReply, DecodeRequest } from './decode-worker';

export interface BatchDecoder {
  decode(files: readonly string[]): Promise<DecodedBatch>;
  close(): Promise<void>;
}

/** The compiled worker file; from TypeScript sources (tests under tsx), the .ts file through tsx's hook. */
function startWorker(): Worker {
  if (!__filename.endsWith('.ts')) return new Worker(join(__dirname, 'decode-worker.js'));
  // On Node 20 a worker thread does not inherit tsx's loader hooks, so it registers tsx's CommonJS hook first.
  const hook = require.resolve('tsx/cjs');
  const code = `require(${JSON.stringify(hook)}); require(${JSON.stringify(join(__dirname, 'decode-worker.ts'))});`;
  return new Worker(code, { eval: true });
}

/** Every file of the batch failed for the same reason (the worker is gone). */
function failedBatch(files: readonly string[], reason: string): DecodedBatch {
  return { x: new Float32Array(0), errors: files.map(() => reason) };
}

class DecodeWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { files: readonly string[]; resolve: (b: DecodedBatch) => void }>();
  private nextId = 0;
  /** set once the thread has failed or ended: later batches fail at once instead of waiting forever */
  private dead: string | null = null;

  constructor() {
    this.worker = startWorker();
    this.worker.unref(); // only pending batches keep the process alive
    this.worker.on('message', (m: DecodeReply) => this.settle(m));
    this.worker.on('error', (e: unknown) => this.failAll(`decode worker failed: ${e instanceof Error ? e.message : String(e)}`));
    this.worker.on('exit', (code) => this.failAll(this.dead ?? `decode worker exited with code ${code}`));
  }

  get size(): number {
    return this.pending.size;
  }

  decode(files: readonly string[]): Promise<DecodedBatch> {
    if (this.dead !== null) return Promise.resolve(failedBatch(files, this.dead));
    const id = this.nextId++;
    const p = new Promise<DecodedBatch>((resolve) => this.pending.set(id, { files, resolve }));
    if (this.pending.size === 1) this.worker.ref();
    this.worker.postMessage({ id, files: [...files] } satisfies DecodeRequest);
    return p;
  }

  private settle(m: DecodeReply): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (this.pending.size === 0) this.worker.unref();
    if ('error' in m) p.resolve(failedBatch(p.files, `decode worker: ${m.error}`));
    else p.resolve({ x: m.x, errors: m.errors });
  }

  private failAll(reason: string): void {
    this.dead ??= reason;
    for (const p of this.pending.values()) p.resolve(failedBatch(p.files, reason));
    this.pending.clear();
  }

  async close(): Promise<void> {
    this.failAll('decode worker closed');
    await this.worker.terminate();
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
