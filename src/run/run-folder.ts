/**
 * How the trainer takes over a run folder (under its lock, lock.ts):
 *  - a new run refuses a folder that already holds one (a second `train` without --resume used to overwrite
 *    best.ckpt and the first epoch files while leaving the later ones), unless --force, which moves the old run
 *    into RUN/previous-N: nothing is ever deleted;
 *  - a resumed run repairs what a kill -9 between the files of one save can leave: temp files of the dead writer,
 *    a latest.json that is missing or names a file that was not used, best.ckpt / best_acc.txt / best.json that are
 *    missing or disagree with the best accuracy the checkpoint carries (they are rebuilt from the epoch file that
 *    scored it, found by its recorded metrics).
 * What it is not: the save order or the checkpoint format (checkpoint.ts, checkpoint-format.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fsyncDir, writeFileAtomic } from './atomic';
import {
  BEST_FILE, CHECKPOINT_DIR, POINTER_FILE, bestAccuracyText, decodeCheckpoint, epochFileName, isCheckpointFile, listEpochFiles,
  pointerTarget, sweepStaleTemps, writeBestAccuracy, writePointer, type Checkpoint, type LoadedCheckpoint,
} from './checkpoint';
import { LOCK_FILE } from './lock';
import { METRICS_FILE } from './metrics';

const BEST_TEXT = 'best_acc.txt';
const BEST_JSON = 'best.json';
const PREVIOUS = /^previous-(\d+)$/;

/** What in `runDir` shows that a run was trained there: checkpoints, logs, best files. */
export function runFiles(runDir: string): string[] {
  if (!fs.existsSync(runDir)) return [];
  const found: string[] = [];
  const ckDir = path.join(runDir, CHECKPOINT_DIR);
  if (fs.existsSync(ckDir)) {
    for (const f of [...listEpochFiles(ckDir)].reverse()) found.push(path.join(CHECKPOINT_DIR, f.name));
    for (const f of [BEST_FILE, POINTER_FILE]) if (fs.existsSync(path.join(ckDir, f))) found.push(path.join(CHECKPOINT_DIR, f));
  }
  for (const name of fs.readdirSync(runDir).sort()) {
    if ([METRICS_FILE, BEST_TEXT, BEST_JSON].includes(name) || name.startsWith('events.out.tfevents.')) found.push(name);
  }
  return found;
}

/** Moves everything in `runDir` but the lock and earlier previous-N folders into a new RUN/previous-N; returns it. */
export function moveRunAside(runDir: string): string {
  const entries = fs.readdirSync(runDir).filter((n) => n !== LOCK_FILE && !PREVIOUS.test(n));
  const taken = fs.readdirSync(runDir).map((n) => Number(PREVIOUS.exec(n)?.[1] ?? 0));
  let n = Math.max(0, ...taken) + 1;
  for (;; n++) {
    try {
      fs.mkdirSync(path.join(runDir, `previous-${n}`));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  const dest = path.join(runDir, `previous-${n}`);
  for (const name of entries) fs.renameSync(path.join(runDir, name), path.join(dest, name));
  fsyncDir(dest);
  fsyncDir(runDir);
  return dest;
}

/**
 * A new run (no --resume) in `runDir`: refuses a folder that holds a run, offering --resume, another --out or
 * --force; with `force`, moves the old run aside and says where.
 */
export function claimForNewRun(runDir: string, force: boolean, log: (m: string) => void): void {
  const found = runFiles(runDir);
  if (found.length === 0) return;
  const shown = found.length > 3 ? `${found.slice(0, 3).join(', ')} and ${found.length - 3} more` : found.join(', ');
  if (!force) {
    throw new Error(`train: ${runDir} already holds a run (${shown}). To continue it, add --resume; to keep it and ` +
      `train anew, choose another --out; to start over here, add --force (the old run is moved into ` +
      `${path.join(runDir, 'previous-N')}, nothing is deleted)`);
  }
  log(`--force: starting over in ${runDir}; the earlier run was moved to ${moveRunAside(runDir)}`);
}

/** True when this run continues the run in `out` itself (not a checkpoint from elsewhere into a new folder). */
export function resumesOut(outDir: string, resume: boolean | string | undefined): boolean {
  if (resume === true) return true;
  if (typeof resume !== 'string') return false;
  const out = path.resolve(outDir);
  const from = path.resolve(resume);
  return from === out || from.startsWith(out + path.sep);
}

/**
 * After a failed start, removes the folders this process created for the run (`out` up to `created`, the first one
 * mkdir made) as long as they are empty: a run that never trained leaves no empty run folder behind.
 */
export function removeEmptyFolders(out: string, created: string): void {
  for (let d = path.resolve(out); ; d = path.dirname(d)) {
    try {
      fs.rmdirSync(d);
    } catch {
      return; // not empty (or gone): everything above it stays
    }
    if (d === path.resolve(created) || d === path.dirname(d)) return;
  }
}

/** The files a run writes atomically, whose temp files a resumed trainer may sweep. */
function isRunFile(target: string): boolean {
  return isCheckpointFile(target) || target === BEST_TEXT || target === BEST_JSON;
}

/**
 * The accuracy by which an epoch was ranked: validation when the run had a validation split, else test; that of the
 * moving average of the weights when the run kept one (train --ema).
 */
function rankedAcc(c: Checkpoint): number | undefined {
  const m = c.metrics;
  return m?.ema_val_acc ?? m?.ema_test_acc ?? m?.val_acc ?? m?.test_acc;
}

/** True when `c` is a complete epoch, committed (epoch <= done), that scored exactly `bestAcc`. */
function scored(c: Checkpoint, bestAcc: number, done: number): boolean {
  return (c.trainer as { complete?: boolean } | undefined)?.complete !== false && c.epoch <= done && rankedAcc(c) === bestAcc;
}

function decodeOrNull(file: string): { c: Checkpoint; bytes: Buffer } | null {
  try {
    const bytes = fs.readFileSync(file);
    return { c: decodeCheckpoint(bytes, file), bytes };
  } catch {
    return null;
  }
}

/**
 * The first epoch file that scored `bestAcc` (ties: the earliest, as the trainer ranks with >). Epochs whose
 * history row has that test accuracy are read first: without a validation split that is the one; otherwise
 * every file is read in order.
 */
function findBestEpoch(ckDir: string, bestAcc: number, done: number, hint: number[]): { c: Checkpoint; bytes: Buffer } | null {
  const files = listEpochFiles(ckDir).map((f) => f.epoch).filter((e) => e <= done).sort((a, b) => a - b);
  const order = [...hint.filter((e) => files.includes(e)), ...files.filter((e) => !hint.includes(e))];
  for (const e of order) {
    const got = decodeOrNull(path.join(ckDir, epochFileName(e)));
    if (got !== null && scored(got.c, bestAcc, done)) return got;
  }
  return null;
}

/** best_acc.txt and best.json, rewritten when they do not name `best`'s epoch and `acc`. */
function ensureBestText(runDir: string, best: Checkpoint, acc: number, warn: (m: string) => void): void {
  let json: { epoch?: unknown; accuracy?: unknown } = {};
  try {
    json = JSON.parse(fs.readFileSync(path.join(runDir, BEST_JSON), 'utf8')) as typeof json;
  } catch {
    // missing or torn: rewritten below
  }
  let text: string | null = null;
  try {
    text = fs.readFileSync(path.join(runDir, BEST_TEXT), 'utf8');
  } catch {
    // missing: rewritten below
  }
  if (json.epoch === best.epoch && json.accuracy === acc && text === bestAccuracyText(best.epoch, acc)) return;
  writeBestAccuracy(runDir, best.epoch, acc, { test_acc: best.metrics?.test_acc, test_loss: best.metrics?.test_loss, step: best.step });
  warn(`${BEST_TEXT} and ${BEST_JSON} did not name the best epoch (${best.epoch}, ${(100 * acc).toFixed(3)}%): rewritten`);
}

export interface ResumePosition {
  /** epochs completed by the checkpoint resumed from */
  epochsDone: number;
  /** the best ranked accuracy it carries (< 0: none yet) */
  bestAcc: number;
  /** its history rows (epoch, test_acc) */
  history: readonly { epoch: number; test_acc: number }[];
}

function ensureBest(runDir: string, pos: ResumePosition, warn: (m: string) => void): void {
  const ckDir = path.join(runDir, CHECKPOINT_DIR);
  const bestFile = path.join(ckDir, BEST_FILE);
  let best = decodeOrNull(bestFile)?.c ?? null;
  if (best === null || !scored(best, pos.bestAcc, pos.epochsDone)) {
    const hint = pos.history.filter((h) => h.test_acc === pos.bestAcc).map((h) => h.epoch);
    const found = findBestEpoch(ckDir, pos.bestAcc, pos.epochsDone, hint);
    if (found === null) {
      warn(`${bestFile} is missing or does not hold the best epoch, and no epoch checkpoint with the best accuracy ` +
        `(${(100 * pos.bestAcc).toFixed(3)}%) is left to rebuild it from; ${runDir}/best stays unavailable`);
      return;
    }
    writeFileAtomic(bestFile, found.bytes);
    warn(`${bestFile} was missing or did not hold the best epoch: rebuilt from ${epochFileName(found.c.epoch)}`);
    best = found.c;
  }
  ensureBestText(runDir, best, pos.bestAcc, warn);
}

/**
 * Repairs `runDir` (held under its lock) before a resume from `loaded`: sweeps our dead writers' temp files,
 * points latest.json at the file resumed from, and rebuilds the best files when they disagree with it.
 */
export function repairOnResume(runDir: string, loaded: LoadedCheckpoint, pos: ResumePosition, warn: (m: string) => void): void {
  const ckDir = path.join(runDir, CHECKPOINT_DIR);
  const swept = [...sweepStaleTemps(ckDir, isRunFile), ...sweepStaleTemps(runDir, isRunFile)];
  if (swept.length > 0) warn(`removed ${swept.length} temp file(s) left by an interrupted save: ${swept.join(', ')}`);
  const name = path.basename(loaded.path);
  if (path.resolve(path.dirname(loaded.path)) === path.resolve(ckDir) && pointerTarget(ckDir) !== name) {
    writePointer(ckDir, name, loaded.checkpoint, fs.readFileSync(loaded.path));
    warn(`${path.join(ckDir, POINTER_FILE)} did not name the checkpoint resumed from: it now names ${name}`);
  }
  if (Number.isFinite(pos.bestAcc) && pos.bestAcc >= 0) ensureBest(runDir, pos, warn);
}
