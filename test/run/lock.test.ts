/**
 * Tests for the run-folder lock: a second trainer is refused with the holder's pid, a lock of a dead process is
 * taken over with a warning, other hosts and half-written locks are handled, and the lock goes on exit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { acquireRunLock, LOCK_FILE } from '../../src/run/lock';
import { tempDirMaker } from '../helpers/tmp';

const tmpDir = tempDirMaker('resnet-lock');

function writeLock(run: string, fields: object): string {
  const file = path.join(run, LOCK_FILE);
  fs.writeFileSync(file, JSON.stringify({ startedAt: '2020-01-01T00:00:00.000Z', token: 'feedface', ...fields }));
  return file;
}

test('acquire writes pid, host and start time; release removes it; a second acquire in-process fails', () => {
  const run = path.join(tmpDir(), 'new-run');
  const lock = acquireRunLock(run);
  const info = JSON.parse(fs.readFileSync(lock.path, 'utf8'));
  assert.equal(info.pid, process.pid);
  assert.equal(info.hostname, os.hostname());
  assert.ok(Math.abs(Date.parse(info.startedAt) - Date.now()) < 60_000);
  assert.throws(() => acquireRunLock(run), new RegExp(`already held by this process \\(pid ${process.pid}\\)`));
  lock.release();
  assert.equal(fs.existsSync(lock.path), false);
  lock.release(); // idempotent
  acquireRunLock(run).release();
});

test('a second trainer gets an error naming the holding pid; the lock goes when the holder exits', async () => {
  const run = tmpDir();
  const fixture = path.join(__dirname, 'fixtures', `lock-holder${path.extname(__filename)}`);
  const child = spawn(process.execPath, [...process.execArgv, fixture, run], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`lock holder exited early with ${code}`)));
    });
    const held = new RegExp(`another trainer is using this run folder: .*train\\.lock is held by pid ${child.pid} on `);
    assert.throws(() => acquireRunLock(run), held);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.stdin.end();
    assert.equal(await exited, 0);
    assert.equal(fs.existsSync(path.join(run, LOCK_FILE)), false, 'released on normal exit');
    acquireRunLock(run).release();
  } finally {
    child.kill('SIGKILL');
  }
});

test('a stale lock of an exited process is taken over with a warning', () => {
  const run = tmpDir();
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const deadPid = Number(dead.stdout);
  assert.ok(deadPid > 0);
  writeLock(run, { pid: deadPid, hostname: os.hostname() });
  const warnings: string[] = [];
  const lock = acquireRunLock(run, { onWarning: (m) => warnings.push(m) });
  assert.equal(JSON.parse(fs.readFileSync(lock.path, 'utf8')).pid, process.pid);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], new RegExp(`taking over the stale lock .* of pid ${deadPid} on .*no longer exists`));
  lock.release();
});

test('a lock from another host is never judged stale', () => {
  const run = tmpDir();
  const file = writeLock(run, { pid: 1, hostname: `not-${os.hostname()}` });
  assert.throws(() => acquireRunLock(run), /held by pid 1 on not-.*another host.*delete .*train\.lock/);
  assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).pid, 1);
});

test('a half-written lock is respected while fresh and taken over when old', () => {
  const run = tmpDir();
  const file = path.join(run, LOCK_FILE);
  fs.writeFileSync(file, '{"pid": 12');
  assert.throws(() => acquireRunLock(run), /is being created by another process/);
  const old = new Date(Date.now() - 60_000);
  fs.utimesSync(file, old, old);
  const warnings: string[] = [];
  const lock = acquireRunLock(run, { onWarning: (m) => warnings.push(m) });
  assert.match(warnings[0], /is unreadable and \d+ s old; taking it over/);
  lock.release();
});

test('a live process holding the lock blocks acquisition (our parent pid, which surely exists)', () => {
  const run = tmpDir();
  writeLock(run, { pid: process.ppid, hostname: os.hostname() });
  assert.throws(() => acquireRunLock(run), new RegExp(`held by pid ${process.ppid} `));
});
