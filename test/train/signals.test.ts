/**
 * Tests for the stop-signal handling: a child process receiving SIGINT/SIGTERM
 * finishes its "save" despite a second signal and exits 130/143; in-process, listeners chain and dispose restores.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { installStopSignals, throughPollPhase } from '../../src/train/signals';

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the fixture; `onLine` sees each stdout line with the child, to send it signals. */
function runFixture(mode: string, onLine: (line: string, kill: (s: NodeJS.Signals) => void) => void): Promise<Run> {
  const fixture = path.join(__dirname, 'fixtures', `stop-signals${path.extname(__filename)}`);
  const child = spawn(process.execPath, [...process.execArgv, fixture, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const watchdog = setTimeout(() => child.kill('SIGKILL'), 30_000);
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    const before = stdout;
    stdout += d;
    const lines = stdout.split('\n').slice(before.split('\n').length - 1, -1);
    for (const line of lines) onLine(line, (s) => child.kill(s));
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(watchdog);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe('in a child process', () => {
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    test(`${sig}: the step finishes, a second ${sig} is ignored during the save, exit ${code}`, async () => {
      const r = await runFixture('train', (line, kill) => {
        if (line === 'ready') setTimeout(() => kill(sig), 100);
        if (line.startsWith('stopping')) kill(sig);
      });
      assert.equal(r.signal, null, `killed by ${r.signal}; stderr: ${r.stderr}`);
      assert.equal(r.code, code, r.stderr);
      assert.match(r.stdout, new RegExp(`^ready\\nfirst ${sig}\\nstopping after step \\d+\\nsaved\\n$`));
      assert.match(r.stderr, new RegExp(`${sig} received again: shutdown after ${sig} is already in progress`));
    });
  }

  test('after dispose, SIGTERM has its default effect again', async () => {
    const r = await runFixture('disposed', (line, kill) => {
      if (line === 'ready') kill('SIGTERM');
    });
    assert.equal(r.signal, 'SIGTERM');
  });
});

describe('in process', () => {
  test('the flag, the signal, the exit code; earlier listeners still run; dispose removes only ours', () => {
    const before = process.listenerCount('SIGTERM');
    const seenByEarlier: string[] = [];
    const earlier = (s: string): void => {
      seenByEarlier.push(s);
    };
    process.on('SIGTERM', earlier);
    const messages: string[] = [];
    const firsts: string[] = [];
    const stop = installStopSignals((s) => firsts.push(s), { log: (m) => messages.push(m) });
    try {
      assert.equal(stop.stopRequested(), false);
      assert.equal(stop.signal(), null);
      assert.equal(stop.exitCode(), 0);
      process.emit('SIGTERM', 'SIGTERM');
      assert.equal(stop.stopRequested(), true);
      assert.equal(stop.signal(), 'SIGTERM');
      assert.equal(stop.exitCode(), 143);
      process.emit('SIGINT', 'SIGINT');
      assert.equal(stop.signal(), 'SIGTERM', 'the first signal decides');
      assert.deepEqual(firsts, ['SIGTERM']);
      assert.match(messages[0], /SIGINT received again: shutdown after SIGTERM is already in progress/);
      assert.deepEqual(seenByEarlier, ['SIGTERM']);
    } finally {
      stop.dispose();
      stop.dispose();
      process.removeListener('SIGTERM', earlier);
    }
    assert.equal(process.listenerCount('SIGTERM'), before);
  });

  test('SIGINT gives 130 and the default message when no callback is given', () => {
    const messages: string[] = [];
    const stop = installStopSignals(undefined, { log: (m) => messages.push(m) });
    const sigintBefore = process.listenerCount('SIGINT');
    try {
      process.emit('SIGINT', 'SIGINT');
      assert.equal(stop.exitCode(), 130);
      assert.deepEqual(messages, ['SIGINT received: finishing the current step, saving a checkpoint, then exiting with code 130']);
    } finally {
      stop.dispose();
    }
    assert.equal(process.listenerCount('SIGINT'), sigintBefore - 1);
  });
});

describe('throughPollPhase', () => {
  // An I/O callback runs in the event loop's poll phase; one setImmediate from there runs before the next poll, so a
  // signal that arrived during synchronous work after it was not seen yet (the trainer would run one more training step).
  for (const [what, start] of [
    ['from the poll phase (an I/O callback)', (go: () => void) => fs.stat(__filename, go)],
    ['from the check phase (an immediate)', (go: () => void) => setImmediate(go)],
  ] as const) {
    test(`a real signal that arrived during synchronous work resumed ${what} is seen after it`, async () => {
      const stop = installStopSignals(() => undefined, { log: () => undefined });
      try {
        const seen = await new Promise<boolean>((resolve) => {
          start(() => {
            process.kill(process.pid, 'SIGTERM');
            const until = Date.now() + 30;
            while (Date.now() < until); // the step: synchronous work while the signal is pending
            void throughPollPhase().then(() => resolve(stop.stopRequested()));
          });
        });
        assert.equal(seen, true);
      } finally {
        stop.dispose();
      }
    });
  }
});
