/**
 * Where `resnet serve` runs its forward passes: an InferenceEngine classifies batches of preprocessed inputs.
 *
 * - ProcessEngine (what `resnet serve` uses): a child process with its own classifier (engine-child.ts; why a
 *   process and not a thread is said there), so that the main thread answers HTTP, /api/health included, while a
 *   batch is in the forward pass. A process that dies (a crash, or a batch over the inference timeout, which ends
 *   it) fails its pending batches with EngineUnavailableError and is started again; one whose restart fails is
 *   tried again at most once a second, and the requests in between fail at once.
 * - inProcessEngine: a classifier already loaded, run on the calling thread (tests and embedding; a forward
 *   pass then blocks everything else the thread does).
 *
 * What it is not: a pool. One process: the CPU's cores are the engine's (oneDNN's threads), not the server's.
 */
import type { Classifier, ModelInfo } from '../predict/classifier';
import type { Prediction } from '../predict/prediction';
import { ChildRequests } from './child';
import type { EngineAsk, EngineReply, ModelSource } from './engine-child';

export type { ModelSource } from './engine-child';

/** 2 min: a batch of 32 takes under a second on the native backend and seconds on the reference one; past that the process is stuck */
export const DEFAULT_INFERENCE_TIMEOUT_MS = 120_000;

/** The engine cannot take requests now (its process died, is restarting, or was closed): retry later. */
export class EngineUnavailableError extends Error {}

/** The model failed on this batch (its process is fine). */
export class InferenceError extends Error {}

export interface EngineStatus {
  /** where forward passes run */
  readonly where: 'process' | 'main';
  /** whether the engine can take requests now */
  readonly ready: boolean;
  /** how many times the inference process was started again after it died */
  readonly restarts: number;
}

export interface InferenceEngine {
  readonly info: ModelInfo;
  /** n preprocessed inputs packed [n,3,32,32] → n predictions in input order. */
  classify(x: Float32Array, n: number): Promise<Prediction[]>;
  status(): EngineStatus;
  /** Fails pending and later requests with EngineUnavailableError(reason) and releases the engine. */
  close(reason?: string): Promise<void>;
}

/** A loaded classifier run on this thread (a batch of one through classifyInput, as the inference process does). */
export function inProcessEngine(classifier: Classifier): InferenceEngine {
  let closed: string | null = null;
  return {
    info: classifier.info,
    async classify(x, n) {
      if (closed !== null) throw new EngineUnavailableError(closed);
      try {
        return n === 1 ? [classifier.classifyInput(x)] : classifier.classifyBatch(x, n);
      } catch (err) {
        throw new InferenceError(err instanceof Error ? err.message : String(err));
      }
    },
    status: () => ({ where: 'main', ready: closed === null, restarts: 0 }),
    async close(reason = 'inference engine closed') {
      closed = reason;
    },
  };
}

type Proc = ChildRequests<EngineReply>;

export interface ProcessEngineOptions {
  /** a batch not answered in this time ends the process (which is then started again) */
  readonly inferenceTimeoutMs?: number;
  /** batch sizes to run once after loading, before the engine takes requests (see batcher.ts) */
  readonly warmup?: readonly number[];
  /** one line per restart and per failure */
  readonly log?: (line: string) => void;
}

export class ProcessEngine implements InferenceEngine {
  private proc: Proc | null = null;
  private starting: Promise<Proc> | null = null;
  private lastFailedStart = -Infinity;
  private restarts = 0;
  private closed: string | null = null;
  private readonly timeoutMs: number;

  private constructor(private readonly source: ModelSource, readonly info: ModelInfo, first: Proc, private readonly opts: ProcessEngineOptions) {
    this.timeoutMs = opts.inferenceTimeoutMs ?? DEFAULT_INFERENCE_TIMEOUT_MS;
    this.adopt(first);
  }

  /** Starts the process and loads the model; rejects (with the loader's message) when the model cannot load. */
  static async start(source: ModelSource, opts: ProcessEngineOptions = {}): Promise<ProcessEngine> {
    const { proc, info } = await spawn(source, opts.warmup ?? []);
    return new ProcessEngine(source, info, proc, opts);
  }

  status(): EngineStatus {
    return { where: 'process', ready: this.closed === null && this.proc !== null, restarts: this.restarts };
  }

  async classify(x: Float32Array, n: number): Promise<Prediction[]> {
    const proc = await this.ready();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new EngineUnavailableError(`inference: a batch of ${n} took over ${this.timeoutMs} ms; the inference process is being restarted`));
        this.opts.log?.(`inference: a batch of ${n} took over ${this.timeoutMs} ms; ending the inference process`);
        void proc.close('inference: timed out');
      }, this.timeoutMs);
    });
    let reply: EngineReply;
    try {
      reply = await Promise.race([proc.request({ kind: 'classify', x, n } satisfies EngineAsk), timeout]);
    } catch (err) {
      if (err instanceof EngineUnavailableError) throw err;
      if (this.closed !== null) throw new EngineUnavailableError(this.closed);
      throw new EngineUnavailableError(`inference: ${err instanceof Error ? err.message : String(err)}; it is being restarted`);
    } finally {
      clearTimeout(timer);
    }
    if ('error' in reply) throw new InferenceError(reply.error);
    if (!('predictions' in reply) || reply.predictions.length !== n) {
      throw new InferenceError(`inference: expected ${n} predictions from the inference process, received ${JSON.stringify(Object.keys(reply))}`);
    }
    return reply.predictions;
  }

  /** Requests sent to the inference process and not yet answered (tests kill it while this is above 0). */
  get sent(): number {
    return this.proc?.size ?? 0;
  }

  /**
   * Kills the current process (SIGKILL), as a crash would: its pending batches fail with EngineUnavailableError
   * and a new process is started. The inference timeout does this; tests do it to check the recovery.
   */
  async kill(): Promise<void> {
    await this.proc?.close('inference: the process was killed');
  }

  async close(reason = 'inference engine closed'): Promise<void> {
    this.closed = reason;
    const proc = this.proc;
    this.proc = null;
    await proc?.close(reason);
    const pending = this.starting;
    if (pending) await pending.then((t) => t.close(reason), () => undefined);
  }

  private adopt(proc: Proc): void {
    this.proc = proc;
    proc.child.once('exit', (code, signal) => {
      if (this.proc !== proc || this.closed !== null) return;
      this.proc = null;
      this.opts.log?.(`inference process exited (${signal ?? `code ${code}`}); starting a new one`);
      this.ready().catch(() => undefined); // started now, not on the next request; a failure is logged there
    });
  }

  /** The live process, or a new one (at most one start a second after a failed one). */
  private ready(): Promise<Proc> {
    if (this.closed !== null) return Promise.reject(new EngineUnavailableError(this.closed));
    if (this.proc) return Promise.resolve(this.proc);
    if (this.starting) return this.starting;
    if (performance.now() - this.lastFailedStart < 1000) {
      return Promise.reject(new EngineUnavailableError('inference: the inference process could not be started again; retrying shortly'));
    }
    this.starting = spawn(this.source, this.opts.warmup ?? []).then(
      ({ proc }) => {
        this.starting = null;
        this.restarts++;
        if (this.closed !== null) {
          void proc.close(this.closed);
          throw new EngineUnavailableError(this.closed);
        }
        this.adopt(proc);
        return proc;
      },
      (err: Error) => {
        this.starting = null;
        this.lastFailedStart = performance.now();
        this.opts.log?.(`inference process: restart failed: ${err.message}`);
        throw new EngineUnavailableError(`inference: the inference process could not be started again (${err.message})`);
      },
    );
    return this.starting;
  }
}

/** A new process with the model loaded. */
async function spawn(source: ModelSource, warmup: readonly number[]): Promise<{ proc: Proc; info: ModelInfo }> {
  const proc: Proc = new ChildRequests<EngineReply>(__dirname, 'engine-child', __filename.endsWith('.ts'), 'inference process');
  let reply: EngineReply;
  try {
    reply = await proc.request({ kind: 'load', source, warmup: [...warmup] } satisfies EngineAsk);
  } catch (err) {
    await proc.close('inference process: load failed');
    throw err;
  }
  if (!('info' in reply)) {
    await proc.close('inference process: load failed');
    throw new Error('error' in reply ? reply.error : 'inference process: expected the model info in reply to load');
  }
  return { proc, info: reply.info };
}
