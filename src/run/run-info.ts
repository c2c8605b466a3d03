/**
 * A run's metadata, RUN/run.json: what the trainer was asked to do and on what (config, data set and its
 * fingerprint, class names, backend, precision, Node version), rewritten whole each time a run starts or resumes.
 * It is for people and for tools that read a run folder (serve, eval, export) without importing the trainer.
 *
 * What it is not: what resume reads (each checkpoint carries its own config and env, checkpoint.ts), nor a schema
 * check: the trainer decides what the record holds; a reader takes what it finds.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from './atomic';

export const RUN_INFO_FILE = 'run.json';

/** Writes `info` as indented JSON to RUN/run.json, atomically (a reader never sees half a file). */
export function saveRunInfo(runDir: string, info: object): void {
  writeFileAtomic(path.join(runDir, RUN_INFO_FILE), `${JSON.stringify(info, null, 2)}\n`);
}

/** RUN/run.json as an object, or null when the folder has none (runs from before the file, or not a run). */
export function readRunInfo(runDir: string): Record<string, unknown> | null {
  const file = path.join(runDir, RUN_INFO_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const v: unknown = JSON.parse(text);
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new Error(`readRunInfo: expected ${file} to hold a JSON object, received ${Array.isArray(v) ? 'an array' : String(v)}`);
  }
  return v as Record<string, unknown>;
}
