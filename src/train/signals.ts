/**
 * Graceful stop for the trainer: the first SIGINT (Ctrl-C) or SIGTERM only sets a flag; the training loop checks
 * it between steps, finishes the current step, saves a checkpoint, flushes its logs and exits with 128 + the
 * signal number (130 for SIGINT, 143 for SIGTERM). Further signals print that shutdown is in progress and are
 * ignored, so nothing is interrupted half-way (a kill -9 stays safe: saves are atomic).
 *
 * What it is not: a way to interrupt a step in the middle, or a handler for SIGKILL (uncatchable) or for worker
 * threads (signals reach the main thread only). Listeners that were installed before ours keep running (they are
 * chained by the event emitter); dispose() removes ours, which restores Node's default exit if there were none.
 * References: nodejs.org/api/process.html#signal-events; Lightning's signal connector (exit code 143, handlers
 * restored at teardown).
 */

export type StopSignal = 'SIGINT' | 'SIGTERM';

export interface StopSignals {
  /** true once SIGINT or SIGTERM has arrived */
  stopRequested(): boolean;
  /** the first signal received, or null */
  signal(): StopSignal | null;
  /** 130 after SIGINT, 143 after SIGTERM, 0 when no signal arrived */
  exitCode(): number;
  /** removes our listeners; idempotent */
  dispose(): void;
}

const EXIT_CODE: Record<StopSignal, number> = { SIGINT: 130, SIGTERM: 143 };

export interface StopSignalOptions {
  /** where the messages go (default: stderr) */
  log?: (message: string) => void;
}

/**
 * Starts listening for SIGINT and SIGTERM. `onFirst` runs once, on the first signal (the trainer can print what it
 * is doing); without it a default message is printed.
 */
export function installStopSignals(onFirst?: (sig: StopSignal) => void, opts: StopSignalOptions = {}): StopSignals {
  const log = opts.log ?? ((m: string) => process.stderr.write(m + '\n'));
  let first: StopSignal | null = null;
  let disposed = false;

  const handler = (sig: NodeJS.Signals): void => {
    const s = sig === 'SIGTERM' ? 'SIGTERM' : 'SIGINT';
    if (first !== null) {
      log(`${s} received again: shutdown after ${first} is already in progress (finishing the step, saving); ignored`);
      return;
    }
    first = s;
    if (onFirst) onFirst(s);
    else log(`${s} received: finishing the current step, saving a checkpoint, then exiting with code ${EXIT_CODE[s]}`);
  };

  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    stopRequested: () => first !== null,
    signal: () => first,
    exitCode: () => (first === null ? 0 : EXIT_CODE[first]),
    dispose: () => {
      if (disposed) return;
      disposed = true;
      process.removeListener('SIGINT', handler);
      process.removeListener('SIGTERM', handler);
    },
  };
}

/**
 * Resolves once the event loop has been through a poll phase, the phase in which Node runs signal listeners, so
 * that a signal which arrived during synchronous work is seen by the next stopRequested(). One setImmediate is not
 * enough: an immediate queued from the poll phase (where a worker's message or an I/O callback resumes the caller)
 * runs in the check phase of the same turn, before any new poll. An immediate queued from the check phase runs after
 * the next poll; two in a row therefore always straddle one, whichever phase the caller resumed in.
 */
export async function throughPollPhase(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
}
