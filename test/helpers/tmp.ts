/** Temporary folders for a test file, removed after its tests have run. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after } from 'node:test';

/** Returns a function that makes a fresh temporary folder (name prefix `prefix-`) on each call. */
export function tempDirMaker(prefix: string): () => string {
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  return () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
    dirs.push(d);
    return d;
  };
}
