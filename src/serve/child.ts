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
import { PendingReplies } from '../util/worker';

export class ChildRequests<Reply extends { id: number }> {
  readonly child: ChildProcess;
  private readonly replies = new PendingReplies<Reply>(() => this.busy(), () => this.idle());

  /** Starts `<dir>/<base>.js`, or `<dir>/<base>.ts` through tsx when `fromSources`; `what` names it in errors. */
  constructor(dir: string, base: string, fromSources: boolean, private readonly what: string) {
    const execArgv = fromSources ? [...process.execArgv, '--require', require.resolve('tsx/cjs')] : process.execArgv;
    // stdout stays the server's own (scripts read its one line); the child's warnings go to stderr
    this.child = fork(join(dir, `${base}.${fromSources ? 'ts' : 'js'}`), [], { execArgv, serialization: 'advanced', stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    this.idle();
    this.child.on('message', (m: Reply) => this.replies.settle(m));
    this.child.on('error', (e) => this.failAll((this.replies.dead ??= new Error(`${what} failed: ${e.message}`))));
    this.child.on('exit', (code, signal) => this.failAll((this.replies.dead ??= new Error(`${what} exited (${signal ?? `code ${code}`})`))));
  }

  /** Requests in flight. */
  get size(): number {
    return this.replies.size;
  }

  request(message: object): Promise<Reply> {
    return this.replies.request((id) => this.child.send({ id, ...message }, (err) => {
      if (err) this.failAll((this.replies.dead ??= new Error(`${this.what}: could not send a request (${err.message})`)));
    }));
  }

  /** Rejects what is pending (and anything later) with `reason`, then ends the child and waits for its exit. */
  async close(reason: string): Promise<void> {
    this.replies.dead ??= new Error(reason);
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

  private failAll(e: Error): void {
    this.replies.failAll(e);
    this.idle();
  }
}
