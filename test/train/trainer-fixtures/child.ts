/**
 * Runs `resnet ...` as a child process for the CLI tests (not a test file): bin/resnet.js when the tests are compiled
 * (dist/test/...), the TypeScript CLI through tsx otherwise. Collects stdout/stderr, waits for lines and the exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cliCommand } from '../../helpers/cli';

export interface CliChild {
  readonly proc: ChildProcess;
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /** resolves once the stream's text so far matches `re`; rejects if the child exits first or after `ms` */
  waitFor(re: RegExp, stream?: 'stdout' | 'stderr', ms?: number): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `resnet --backend reference ARGS` with extra environment variables (in `cwd`, default ours). */
export function startCli(args: string[], env: Record<string, string> = {}, cwd?: string): CliChild {
  const proc = spawn(process.execPath, [...cliCommand(), '--backend', 'reference', ...args], {
    env: { ...process.env, ...env },
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const text = { stdout: '', stderr: '' };
  const waiters: { re: RegExp; stream: 'stdout' | 'stderr'; resolve: () => void }[] = [];
  const check = (): void => {
    for (const w of [...waiters]) {
      if (w.re.test(text[w.stream])) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  proc.stdout?.on('data', (d: Buffer) => { text.stdout += d.toString('utf8'); check(); });
  proc.stderr?.on('data', (d: Buffer) => { text.stderr += d.toString('utf8'); check(); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('close', (code, signal) => resolve({ code, signal }));
  });
  const describe = (): string => `\n--- stdout ---\n${text.stdout}\n--- stderr ---\n${text.stderr}`;
  return {
    proc,
    pid: proc.pid as number,
    stdout: () => text.stdout,
    stderr: () => text.stderr,
    exited,
    waitFor(re, stream = 'stdout', ms = 90_000) {
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${re} on ${stream}${describe()}`)), ms);
        const done = (): void => { clearTimeout(timer); resolve(); };
        waiters.push({ re, stream, resolve: done });
        check();
        void exited.then(({ code, signal }) => {
          clearTimeout(timer);
          if (waiters.some((w) => w.resolve === done)) reject(new Error(`resnet exited (${code ?? signal}) before ${re} appeared on ${stream}${describe()}`));
        });
      });
    },
  };
}
