/**
 * A child process that answers requests over its IPC channel, for the server's inference process
 * (engine-child.ts): the process counterpart of src/util/worker.ts's WorkerRequests, with the same rules.
 *
 * What it is: starting a script from the compiled tree (the sibling .js) or from the TypeScript sources (tests
 * under tsx: the child registers tsx's CommonJS hook first), with structured-clone messages (typed arrays go as
 * they are), and the bookkeeping of requests answered by id: only pending requests keep this process alive, and
 * once the child fails or exits, pending and later requests are rejected with the reason.
 * What it is not: a pool, or a supervisor (engine.ts decides when to start another).
 */
import { ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';

export class ChildRequests<Reply extends { id: number }> {
  readonly child: ChildProcess;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  /** set once the child has failed or ended: later requests fail at once instead of waiting forever */
  private dead: Error | null = null;

  /** Starts `<dir>/<base>.js`, or `<dir>/<base>.ts` through tsx when `fromSources`; `what` names it in errors. */
  constructor(dir: string, base: string, fromSources: boolean, private readonly what: string) {
    const execArgv = fromSources ? [...process.execArgv, '--require', require.resolve('tsx/cjs')] : process.execArgv;
    // stdout stays the server's own (scripts read its one line); the child's warnings go to stderr
    this.child = fork(join(dir, `${base}.${fromSources ? 'ts' : 'js'}`), [], { execArgv, serialization: 'advanced', stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    this.idle();
    this.child.on('message', (m: Reply) => this.settle(m));
    this.child.on('error', (e) => this.failAll((this.dead ??= new Error(`${what} failed: ${e.message}`))));
    this.child.on('exit', (code, signal) => this.failAll((this.dead ??= new Error(`${what} exited (${signal ?? `code ${code}`})`))));
  }

  /** Requests in flight. */
  get size(): number {
    return this.pending.size;
  }

  request(message: object): Promise<Reply> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    const p = new Promise<Reply>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    if (this.pending.size === 1) this.busy();
    this.child.send({ id, ...message }, (err) => {
      if (err) this.failAll((this.dead ??= new Error(`${this.what}: could not send a request (${err.message})`)));
    });
    return p;
  }

  /** Rejects what is pending (and anything later) with `reason`, then ends the child and waits for its exit. */
  async close(reason: string): Promise<void> {
    this.dead ??= new Error(reason);
    this.failAll(new Error(reason));
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.ref(); // until it has exited: the caller awaits that
    this.child.kill('SIGKILL');
    await exited;
  }

  private busy(): void {
    this.child.ref();
    this.child.channel?.ref();
  }

  private idle(): void {
    this.child.unref();
    this.child.channel?.unref();
  }

  private settle(m: Reply): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (this.pending.size === 0) this.idle();
    p.resolve(m);
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    this.idle();
  }
}
