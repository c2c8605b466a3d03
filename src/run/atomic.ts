/**
 * Atomic file replacement: the target path holds either the complete old bytes or the complete new bytes,
 * after a crash, a kill -9 or a power loss, never a mixture or a truncated file.
 *
 * How: write a temp file in the *same* folder (a rename across filesystems is a copy, not atomic), fsync it,
 * rename it over the target, then fsync the folder so that the rename itself is durable.
 * What it is not: a lock (two writers racing on one path each land whole, the last rename wins).
 *
 * References: rename(2) and fsync(2) in POSIX; TensorFlow's
 * file_io.atomic_write_string_to_file (temp name in the same directory, then rename).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

/** Writes happen in chunks of this size, through `hooks.write` when given (tests inject failures there). */
const CHUNK = 4 << 20;

export interface AtomicWriteHooks {
  /** stands in for fs.writeSync(fd, buffer, offset, length); returns the number of bytes written */
  write?: (fd: number, buffer: Uint8Array, offset: number, length: number) => number;
}

/** Prefix of our temp files: `.NAME.tmp-PID-RANDOM` (a dot file, so listings and globs skip it). */
export function tempNameFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Parses the pid out of a temp name made by tempNameFor, or null if `name` is not one of ours. */
export function tempFilePid(name: string): number | null {
  const m = /^\..+\.tmp-(\d+)-[0-9a-f]{8}$/.exec(name);
  return m ? Number(m[1]) : null;
}

/** The name a temp file made by tempNameFor stands for (`.best.ckpt.tmp-1-0a1b2c3d` → `best.ckpt`), or ''. */
export function tempFileTarget(name: string): string {
  const m = /^\.(.+)\.tmp-\d+-[0-9a-f]{8}$/.exec(name);
  return m ? m[1] : '';
}

/** Plain words for the errno codes a file write meets (a user reads them, not a programmer). */
const FS_ERROR_WORDS: Record<string, string> = {
  ENOSPC: 'the disk is full', EDQUOT: 'the disk quota is exceeded', EACCES: 'permission denied', EPERM: 'permission denied',
  EROFS: 'the file system is read-only', ENOENT: 'its folder does not exist (was it moved or deleted?)',
  ENOTDIR: 'a part of the path is a file, not a folder', EISDIR: 'it is a folder', EMFILE: 'too many files are open',
};

/** What went wrong with a file operation, in words: the errno code's sentence, else the error's own message. */
export function fsErrorWords(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return FS_ERROR_WORDS[e.code ?? ''] ?? e.message;
}

/** fsync of a directory makes a rename in it durable; some systems refuse to fsync directories, and that is fine. */
export function fsyncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EPERM' && code !== 'EISDIR' && code !== 'EBADF' && code !== 'ENOTSUP') throw err;
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
}

function writeAll(fd: number, bytes: Uint8Array, hooks: AtomicWriteHooks): void {
  const write = hooks.write ?? ((f, b, o, l) => fs.writeSync(f, b, o, l));
  for (let off = 0; off < bytes.length; ) {
    const n = write(fd, bytes, off, Math.min(CHUNK, bytes.length - off));
    if (!(n > 0)) throw new Error(`write returned ${n} at byte ${off} of ${bytes.length}`);
    off += n;
  }
}

/**
 * Replaces `target` with `data` atomically and durably. On any error the target is unchanged, the temp file is
 * removed, and the error is rethrown with the operation and the path in its message.
 */
export function writeFileAtomic(target: string, data: Uint8Array | string, hooks: AtomicWriteHooks = {}): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const dir = path.dirname(target);
  const tmp = tempNameFor(target);
  let fd: number | null = null;
  try {
    fd = fs.openSync(tmp, 'wx', 0o644);
    writeAll(fd, bytes, hooks);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(tmp, target);
  } catch (err) {
    if (fd !== null) {
      try {
        fs.closeSync(fd);
      } catch {
        // the write error below is the one worth reporting
      }
    }
    fs.rmSync(tmp, { force: true });
    const e = err as NodeJS.ErrnoException;
    const wrapped = new Error(`cannot write ${target}: ${fsErrorWords(err)}; the file was left unchanged`, { cause: err });
    throw Object.assign(wrapped, { code: e.code });
  }
  fsyncDir(dir);
}
