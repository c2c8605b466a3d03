/**
 * One trainer per run folder: RUN/train.lock, created with O_EXCL, holding {pid, hostname, startedAt, token}.
 *
 * A second trainer on the same folder gets an error naming the holder. A lock left by a process that no longer
 * exists (same host, kill(pid, 0) fails with ESRCH) is taken over with a warning, so kill -9 or a power loss
 * never needs manual cleanup. The lock is released by release() and, failing that, on normal process exit.
 * What it is not: a lock across hosts (a lock from another host is reported, never judged stale) or proof against
 * pid reuse (a recycled pid looks alive: the error then says which file to delete).
 * References: open(2) O_CREAT|O_EXCL; kill(2) with signal 0; TensorFlow's CheckpointManager docs ("only one
 * should be active in a particular directory at a time").
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

export const LOCK_FILE = 'train.lock';

/** A lock file that cannot be parsed is only judged abandoned after this long (its writer may be mid-write). */
const PARTIAL_GRACE_MS = 10_000;

export interface LockInfo {
  pid: number;
  hostname: string;
  startedAt: string;
  token: string;
}

export interface RunLock {
  readonly path: string;
  release(): void;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH'; // EPERM: alive, owned by someone else
  }
}

function parseLock(text: string): LockInfo | null {
  try {
    const o = JSON.parse(text) as Partial<LockInfo>;
    if (Number.isInteger(o.pid) && typeof o.hostname === 'string' && typeof o.token === 'string') return o as LockInfo;
  } catch {
    // a partial or foreign file: the caller decides from its age
  }
  return null;
}

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Removes the lock only if it still holds `expected` (so a lock just created by someone else survives). */
function removeIfUnchanged(file: string, expected: string): void {
  if (readText(file) === expected) fs.rmSync(file, { force: true });
}

function tryCreate(file: string, info: LockInfo): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new Error(`cannot create ${file} (${(err as Error).message})`, { cause: err });
  }
  try {
    fs.writeSync(fd, JSON.stringify(info) + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

/**
 * Decides about an existing lock: throws if it is held; when it is stale, warns and removes it so that the caller
 * can retry; does nothing if it vanished meanwhile.
 */
function judgeExisting(file: string, warn: (m: string) => void): void {
  const text = readText(file);
  if (text === null) return;
  const held = parseLock(text);
  const advice = `if no trainer is using this folder, delete ${file}`;
  if (held === null) {
    const ageMs = Date.now() - fs.statSync(file).mtimeMs;
    if (ageMs < PARTIAL_GRACE_MS) throw new Error(`${file} is being created by another process; ${advice}`);
    warn(`${file} is unreadable and ${Math.round(ageMs / 1000)} s old; taking it over`);
    return removeIfUnchanged(file, text);
  }
  const who = `pid ${held.pid} on ${held.hostname} (started ${held.startedAt})`;
  if (held.hostname !== os.hostname()) {
    throw new Error(`${file} is held by ${who}, another host: it cannot be checked from here; ${advice}`);
  }
  if (held.pid === process.pid) throw new Error(`${file} is already held by this process (pid ${held.pid})`);
  if (pidAlive(held.pid)) {
    throw new Error(`another trainer is using this run folder: ${file} is held by ${who}; ${advice}`);
  }
  warn(`taking over the stale lock ${file} of ${who}: that process no longer exists`);
  removeIfUnchanged(file, text);
}

/** Takes the run folder's lock (creating the folder if needed) or throws an error naming the holder. */
export function acquireRunLock(runDir: string, opts: { onWarning?: (m: string) => void } = {}): RunLock {
  const warn = opts.onWarning ?? ((m: string) => console.warn(m));
  fs.mkdirSync(runDir, { recursive: true });
  const file = path.join(runDir, LOCK_FILE);
  const info: LockInfo = {
    pid: process.pid,
    hostname: os.hostname(),
    startedAt: new Date().toISOString(),
    token: randomBytes(8).toString('hex'),
  };
  for (let attempt = 0; attempt < 5; attempt++) {
    if (tryCreate(file, info)) return holdLock(file, info);
    judgeExisting(file, warn);
  }
  throw new Error(`${file} kept reappearing after 5 attempts (another trainer is starting in this folder)`);
}

function holdLock(file: string, info: LockInfo): RunLock {
  let held = true;
  const release = (): void => {
    if (!held) return;
    held = false;
    process.removeListener('exit', release);
    const current = parseLock(readText(file) ?? '');
    if (current !== null && current.token === info.token) fs.rmSync(file, { force: true });
  };
  process.on('exit', release);
  return { path: file, release };
}
