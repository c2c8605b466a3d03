/**
 * Worker threads that answer requests, shared by the training loader (src/data/loader.ts) and folder prediction's
 * decoders (src/predict/decode-pool.ts).
 *
 * What it is: starting a worker script from the compiled tree (the sibling .js) or from the TypeScript sources
 * (tests under tsx: on Node 20 a worker thread does not inherit tsx's loader hooks, so it registers tsx's CommonJS
 * hook first), and the bookkeeping of requests answered by id: only pending requests keep the process alive, and
 * once the thread fails or exits, pending and later requests are rejected with the reason.
 * What it is not: a pool or a scheduler (the callers decide how many requests are in flight).
 */
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';

/** Starts `<dir>/<base>.js`, or `<dir>/<base>.ts` through tsx when `fromSources` (the caller's own file is .ts). */
export function startScriptWorker(dir: string, base: string, fromSources: boolean, workerData?: unknown): Worker {
  if (!fromSources) return new Worker(join(dir, `${base}.js`), { workerData });
  const hook = require.resolve('tsx/cjs');
  const code = `require(${JSON.stringify(hook)}); require(${JSON.stringify(join(dir, `${base}.ts`))});`;
  return new Worker(code, { eval: true, workerData });
}

/**
 * The bookkeeping of requests answered by id, for a channel to a worker thread (WorkerRequests) or a child process
 * (src/serve/child.ts): ids, the pending promises, `busy` when the first request is pending and `idle` when the last
 * is answered (what keeps the process alive), and `dead`, the reason later requests fail at once.
 */
export class PendingReplies<Reply extends { id: number }> {
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  /** set once the channel has failed or ended: later requests fail at once instead of waiting forever */
  dead: Error | null = null;

  constructor(private readonly busy: () => void, private readonly idle: () => void) {}

  /** Requests in flight. */
  get size(): number {
    return this.pending.size;
  }

  /** A new request: `send` gets its id; the promise settles with the reply of that id (or the channel's failure). */
  request(send: (id: number) => void): Promise<Reply> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    const p = new Promise<Reply>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    if (this.pending.size === 1) this.busy();
    send(id);
    return p;
  }

  settle(m: Reply): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (this.pending.size === 0) this.idle();
    p.resolve(m);
  }

  /** Rejects every pending request with `e` (the caller sets `dead` for later ones). */
  failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}

/** Requests {id, ...} to a worker that replies {id, ...}; `what` names it in errors ("loader worker"). */
export class WorkerRequests<Reply extends { id: number }> {
  private readonly replies: PendingReplies<Reply>;

  constructor(private readonly worker: Worker, what: string) {
    this.replies = new PendingReplies<Reply>(() => worker.ref(), () => worker.unref());
    const r = this.replies;
    worker.unref(); // only pending requests keep the process alive
    worker.on('message', (m: Reply) => r.settle(m));
    worker.on('error', (e: unknown) => r.failAll((r.dead = new Error(`${what} failed: ${e instanceof Error ? e.message : String(e)}`))));
    worker.on('exit', (code) => r.failAll((r.dead ??= new Error(`${what} exited with code ${code}`))));
  }

  /** Requests in flight. */
  get size(): number {
    return this.replies.size;
  }

  request(message: object): Promise<Reply> {
    return this.replies.request((id) => this.worker.postMessage({ id, ...message }));
  }

  /** Rejects what is pending (and anything later) with `reason`, then ends the thread. */
  async close(reason: string): Promise<void> {
    this.replies.dead = new Error(reason);
    this.replies.failAll(this.replies.dead);
    await this.worker.terminate();
  }
}
