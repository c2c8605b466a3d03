/**
 * How a test starts the `resnet` command in a child process: bin/resnet.js when the tests run compiled
 * (dist/test/..., as `npm test` does), the TypeScript CLI through tsx when they run from source (`npx tsx --test`).
 */
import * as path from 'node:path';

/** The repository root, from test/helpers or dist/test/helpers. */
export const REPO_ROOT = __filename.endsWith('.ts') ? path.resolve(__dirname, '..', '..') : path.resolve(__dirname, '..', '..', '..');

/** Arguments for `spawn(process.execPath, [...cliCommand(), ...args])`. */
export function cliCommand(): string[] {
  if (__filename.endsWith('.ts')) return [...process.execArgv, path.join(__dirname, 'run-cli.ts')];
  return [path.join(REPO_ROOT, 'bin', 'resnet.js')];
}
