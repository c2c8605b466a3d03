/**
 * Checkpoints in a run folder: save (atomic, with a pointer written last and bounded retention), load the latest
 * valid one (falling back a generation when the newest is damaged), resolve what `--weights` points at, and the
 * best-accuracy files. The byte format itself lives in checkpoint-format.ts and is re-exported here.
 *
 * Run folder layout (see docs/training-files.md):
 *   RUN/checkpoints/epoch-0001.ckpt ...  one file per saved epoch (4+ digits, zero-padded)
 *   RUN/checkpoints/best.ckpt            a copy of the checkpoint with the best validation accuracy
 *   RUN/checkpoints/latest.json          the pointer: names the newest complete epoch file; written last
 *   RUN/best_acc.txt, RUN/best.json      the best accuracy, in the seed's words and as JSON
 * What it is not: the training loop (it decides when to save), or a lock (lock.ts keeps one trainer per folder).
 * Promised here: an atomic save, the pointer written last, at least 2 generations kept, a checksum and a fallback to
 * the previous generation on damage; a NaN model is never checkpointed or ranked best.
 * References: TensorFlow's CheckpointManager (pointer file after the data).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { writeFileAtomic, tempFilePid, tempFileTarget } from './atomic';
import { Checkpoint, CheckpointCorruptError, decodeCheckpoint, encodeCheckpoint, firstNonFinite, stateDictsOf } from './checkpoint-format';

export {
  CHECKPOINT_MAGIC, CheckpointCorruptError, decodeCheckpoint, encodeCheckpoint, isFiniteStateDict, firstNonFinite,
} from './checkpoint-format';
export type { Checkpoint, CheckpointEma } from './checkpoint-format';

export const CHECKPOINT_DIR = 'checkpoints';
export const POINTER_FILE = 'latest.json';
export const BEST_FILE = 'best.ckpt';

/** Thrown by loadLatestCheckpoint when a run folder has no checkpoint at all (a fresh run, not a failure). */
export class NoCheckpointError extends Error {
  constructor(readonly runDir: string) {
    super(`no checkpoint in ${path.join(runDir, CHECKPOINT_DIR)}`);
    this.name = 'NoCheckpointError';
  }
}

export function epochFileName(epoch: number): string {
  return `epoch-${String(epoch).padStart(4, '0')}.ckpt`;
}

export function epochOf(name: string): number | null {
  const m = /^epoch-(\d{4,})\.ckpt$/.exec(name);
  return m ? Number(m[1]) : null;
}

/** Epoch files in a checkpoints folder, newest (highest epoch) first. */
export function listEpochFiles(ckDir: string): { name: string; epoch: number }[] {
  if (!fs.existsSync(ckDir)) return [];
  return fs
    .readdirSync(ckDir)
    .map((name) => ({ name, epoch: epochOf(name) }))
    .filter((f): f is { name: string; epoch: number } => f.epoch !== null)
    .sort((a, b) => b.epoch - a.epoch);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** The names saveCheckpoint writes in a checkpoints folder (epoch files, best.ckpt, latest.json). */
export function isCheckpointFile(name: string): boolean {
  return name === BEST_FILE || name === POINTER_FILE || epochOf(name) !== null;
}

/**
 * Removes temp files left by a writer killed mid-save (ours from an earlier life of this pid, or dead pids) whose
 * target name passes `isOurs`; returns the names removed. A live writer's temp file is never touched.
 */
export function sweepStaleTemps(dir: string, isOurs: (target: string) => boolean = isCheckpointFile): string[] {
  if (!fs.existsSync(dir)) return [];
  const removed: string[] = [];
  for (const name of fs.readdirSync(dir)) {
    const pid = tempFilePid(name);
    if (pid === null || !isOurs(tempFileTarget(name))) continue;
    if (pid === process.pid || !pidAlive(pid)) {
      fs.rmSync(path.join(dir, name), { force: true });
      removed.push(name);
    }
  }
  return removed;
}

export interface SaveOptions {
  /** keep this many epoch files (the new one included); default: keep all. At least 2 is recommended. */
  keepLast?: number;
  /** also write checkpoints/best.ckpt */
  best?: boolean;
}

function refuseNonFinite(c: Checkpoint): void {
  for (const [what, sd] of stateDictsOf(c)) {
    const bad = firstNonFinite(sd);
    if (bad !== null) {
      const why = `${what}.${bad} holds NaN or Inf (training diverged)`;
      throw new Error(`saveCheckpoint: refusing to save epoch ${c.epoch}: ${why}`);
    }
  }
}

/**
 * Saves `c` as checkpoints/epoch-NNNN.ckpt (atomically), then best.ckpt when asked, then latest.json, then
 * deletes epoch files older than the newest `keepLast`. Resolves to the new file's path. Refuses NaN/Inf weights.
 */
export async function saveCheckpoint(runDir: string, c: Checkpoint, opts: SaveOptions = {}): Promise<string> {
  if (opts.keepLast !== undefined && !(Number.isInteger(opts.keepLast) && opts.keepLast >= 1)) {
    throw new Error(`saveCheckpoint: expected keepLast an integer >= 1, received ${opts.keepLast}`);
  }
  refuseNonFinite(c);
  const bytes = encodeCheckpoint(c);
  const ckDir = path.join(runDir, CHECKPOINT_DIR);
  fs.mkdirSync(ckDir, { recursive: true });
  sweepStaleTemps(ckDir);
  const name = epochFileName(c.epoch);
  const file = path.join(ckDir, name);
  writeFileAtomic(file, bytes);
  if (opts.best) writeFileAtomic(path.join(ckDir, BEST_FILE), bytes);
  writePointer(ckDir, name, c, bytes);
  if (opts.keepLast !== undefined) {
    const older = listEpochFiles(ckDir).filter((f) => f.epoch < c.epoch);
    for (const f of older.slice(opts.keepLast - 1)) fs.rmSync(path.join(ckDir, f.name), { force: true });
  }
  return file;
}

/** Writes checkpoints/latest.json naming the epoch file `name`, which holds `c` encoded as `bytes`. */
export function writePointer(ckDir: string, name: string, c: Pick<Checkpoint, 'epoch' | 'step'>, bytes: Uint8Array): void {
  const pointer = {
    file: name,
    epoch: c.epoch,
    step: c.step,
    bytes: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    savedAt: new Date().toISOString(),
  };
  writeFileAtomic(path.join(ckDir, POINTER_FILE), JSON.stringify(pointer, null, 2) + '\n');
}

/** The file latest.json names, or null when it is missing or unreadable (no warning: for checks, not loads). */
export function pointerTarget(ckDir: string): string | null {
  return readPointer(ckDir, []);
}

/** Reads latest.json; a missing or unreadable pointer is a warning and null, never an exception. */
function readPointer(ckDir: string, warnings: string[]): string | null {
  const p = path.join(ckDir, POINTER_FILE);
  if (!fs.existsSync(p)) return null;
  try {
    const file = (JSON.parse(fs.readFileSync(p, 'utf8')) as { file?: unknown }).file;
    if (typeof file !== 'string' || epochOf(file) === null) {
      throw new Error(`"file" is ${JSON.stringify(file)}, expected epoch-NNNN.ckpt`);
    }
    return file;
  } catch (err) {
    warnings.push(`${p} is unreadable (${(err as Error).message}); looking at the epoch files instead`);
    return null;
  }
}

/**
 * The order in which to try files: the pointer's target, then older epoch files, newest first. Epoch files newer
 * than the target are complete (saves are atomic) but were never committed by the pointer: they are skipped.
 */
function candidates(ckDir: string, warnings: string[]): string[] {
  const target = readPointer(ckDir, warnings);
  const files = listEpochFiles(ckDir);
  if (target === null) return files.map((f) => f.name);
  const targetEpoch = epochOf(target) as number;
  for (const f of files.filter((f) => f.epoch > targetEpoch)) {
    warnings.push(`${path.join(ckDir, f.name)} is newer than ${POINTER_FILE}'s ${target} (a save was interrupted); ignored`);
  }
  return [target, ...files.filter((f) => f.epoch < targetEpoch).map((f) => f.name)];
}

function reasonOf(err: unknown): string {
  if (err instanceof CheckpointCorruptError) return err.reason;
  const e = err as NodeJS.ErrnoException;
  return e.code === 'ENOENT' ? 'missing' : e.message;
}

/** Finds, reads and verifies the newest usable checkpoint in a checkpoints folder (synchronous core). */
function findLatestSync(ckDir: string, runDir: string): LoadedCheckpoint {
  const warnings: string[] = [];
  const order = candidates(ckDir, warnings);
  if (order.length === 0) throw new NoCheckpointError(runDir);
  const failures: string[] = [];
  for (const name of order) {
    const file = path.join(ckDir, name);
    try {
      const checkpoint = decodeCheckpoint(fs.readFileSync(file), file);
      return { checkpoint, path: file, warnings };
    } catch (err) {
      failures.push(`${name}: ${reasonOf(err)}`);
      warnings.push(`${file}: ${reasonOf(err)}; falling back to the previous checkpoint`);
    }
  }
  throw new CheckpointCorruptError(
    ckDir,
    `no usable checkpoint (${failures.join('; ')}); refusing to start from scratch: ` +
      'move the run folder away to start a new run, or restore a checkpoint file',
  );
}

/**
 * Loads the newest valid checkpoint of a run. Damaged files are skipped with a warning naming them and the reason;
 * if files exist but none is usable this throws CheckpointCorruptError; with no checkpoint at all, NoCheckpointError.
 */
export interface LoadedCheckpoint {
  checkpoint: Checkpoint;
  path: string;
  warnings: string[];
}

export async function loadLatestCheckpoint(runDir: string): Promise<LoadedCheckpoint> {
  return findLatestSync(path.join(runDir, CHECKPOINT_DIR), runDir);
}

export async function readCheckpointFile(file: string): Promise<Checkpoint> {
  let bytes: Buffer;
  try {
    bytes = await fs.promises.readFile(file);
  } catch (err) {
    throw new CheckpointCorruptError(file, `cannot be read (${(err as Error).message})`);
  }
  return decodeCheckpoint(bytes, file);
}

function checkpointsDirOf(dir: string): string | null {
  if (fs.existsSync(path.join(dir, CHECKPOINT_DIR))) return path.join(dir, CHECKPOINT_DIR);
  if (fs.existsSync(path.join(dir, POINTER_FILE)) || listEpochFiles(dir).length > 0) return dir;
  return null;
}

/**
 * What a `--weights` argument names: a file is itself; a run folder (or its checkpoints folder) is its newest
 * valid checkpoint (verified); `RUN/best` is RUN/checkpoints/best.ckpt. Anything else is an error saying why.
 * Fallback warnings go to `onWarning` (default: console.warn).
 */
export function resolveWeightsPath(p: string, onWarning: (m: string) => void = (m) => console.warn(m)): string {
  const expected = 'expected a checkpoint file, a run folder, or RUN/best';
  if (fs.existsSync(p)) {
    if (fs.statSync(p).isFile()) return p;
    const ckDir = checkpointsDirOf(p);
    if (ckDir === null) throw new Error(`--weights ${p} is a folder without checkpoints (${expected})`);
    const found = findLatestSync(ckDir, p);
    found.warnings.forEach(onWarning);
    return found.path;
  }
  const parent = path.dirname(p);
  if (path.basename(p) === 'best' && fs.existsSync(parent) && fs.statSync(parent).isDirectory()) {
    const best = path.join(checkpointsDirOf(parent) ?? path.join(parent, CHECKPOINT_DIR), BEST_FILE);
    if (!fs.existsSync(best)) throw new Error(`--weights ${p}: there is no ${best} (no best epoch was saved yet)`);
    return best;
  }
  throw new Error(`--weights ${p} does not exist (${expected})`);
}

/** The seed's best-accuracy sentence: epoch as given, accuracy in percent with 3 decimals, e.g. 88.540%. */
export function bestAccuracyText(epoch: number, acc: number): string {
  return `训练轮次为${epoch}时,准确率最高!准确率为${(acc * 100).toFixed(3)}%`;
}

/**
 * Writes RUN/best_acc.txt (the seed's sentence, no trailing newline, UTF-8) and RUN/best.json, both atomically.
 * `acc` is a fraction in [0, 1]; `epoch` is printed as given (the seed prints 1-based epochs).
 */
export function writeBestAccuracy(runDir: string, epoch: number, acc: number, extra: object = {}): void {
  if (!Number.isSafeInteger(epoch) || epoch < 0) {
    throw new Error(`writeBestAccuracy: expected epoch a non-negative integer, received ${epoch}`);
  }
  if (!(Number.isFinite(acc) && acc >= 0 && acc <= 1)) {
    throw new Error(`writeBestAccuracy: expected accuracy a fraction in [0, 1], received ${acc}`);
  }
  const text = bestAccuracyText(epoch, acc);
  writeFileAtomic(path.join(runDir, 'best_acc.txt'), text);
  const json = { ...extra, epoch, accuracy: acc, text, savedAt: new Date().toISOString() };
  writeFileAtomic(path.join(runDir, 'best.json'), JSON.stringify(json, null, 2) + '\n');
}
