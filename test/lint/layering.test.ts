/**
 * The layering of src/ (rule `layering/folders`, lint/layering.mjs, tiers in eslint.config.mjs): planted imports
 * that point up a tier, across one, or at src/index.ts are reported through the project's own lint config, downward
 * ones are not, and ARCHITECTURE.md draws the same tiers as the config.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ESLint } from 'eslint';
import { REPO_ROOT } from '../helpers/cli';

const RULE = 'layering/folders';
const eslint = new ESLint({ cwd: REPO_ROOT });

/** The layering messages for `code` linted as if it were the file `file` (relative to the repository). */
async function layeringMessages(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(REPO_ROOT, file) });
  return result.messages.filter((m) => m.ruleId === RULE).map((m) => `${m.line}: ${m.message}`);
}

test('an upward import in src/backend/ is reported, in every import form', async () => {
  const code = [
    "import { train } from '../train/trainer';",
    "export * from '../nn/module';",
    "export const lazy = () => import('../tensor/tensor');",
    "export const req = require('../models/resnet');",
    "export type T = import('../cli/parse').Unknown;",
    'export const t = train;',
  ].join('\n');
  const msgs = await layeringMessages('src/backend/planted.ts', code);
  assert.equal(msgs.length, 5, msgs.join('\n'));
  assert.match(msgs[0], /^1: backend\/ may not import train\/ \(\.\.\/train\/trainer\): backend\/ may import only util\//);
  for (const [i, folder] of ['nn', 'tensor', 'models', 'cli'].entries()) {
    assert.match(msgs[i + 1], new RegExp(`^${i + 2}: backend/ may not import ${folder}/`));
  }
});

test('an import across a tier, into src/index.ts, or from an unplaced folder is reported', async () => {
  assert.deepEqual(await layeringMessages('src/data/planted.ts', "export { resnet18 } from '../models/resnet';\n"),
    ['1: data/ may not import models/ (../models/resnet): data/ may import only nn/, tensor/, backend/, util/ ' +
      '(tiers in eslint.config.mjs, drawn in ARCHITECTURE.md)']);
  const deep = await layeringMessages('src/tensor/ops/planted.ts', "export { train } from '../..';\n");
  assert.match(deep.join('\n'), /^1: tensor\/ may not import src\/index\.ts \(\.\.\/\.\.\): it is the public API/);
  const unplaced = await layeringMessages('src/newfolder/planted.ts', 'export const x = 1;\n');
  assert.match(unplaced.join('\n'), /src\/newfolder\/ has no tier in eslint\.config\.mjs/);
});

test('downward and same-folder imports, and files outside src/, are not reported', async () => {
  const code = "import { saveCheckpoint } from '../run/checkpoint';\nimport { Progress } from './progress';\n" +
    "export { saveCheckpoint, Progress };\nexport { SGD } from '../nn/optim';\n";
  assert.deepEqual(await layeringMessages('src/train/planted.ts', code), []);
  assert.deepEqual(await layeringMessages('src/cli/commands/planted.ts', "export { train } from '../../train/trainer';\n"), []);
  assert.deepEqual(await layeringMessages('test/backend/planted.ts', "export { train } from '../../src/train/trainer';\n"), []);
});

test('ARCHITECTURE.md draws the tiers of eslint.config.mjs', async () => {
  const config = (await eslint.calculateConfigForFile(path.join(REPO_ROOT, 'src/backend/backend.ts'))) as {
    rules: Record<string, [unknown, { tiers: string[][] }]>;
  };
  const tiers = config.rules[RULE][1].tiers;
  assert.ok(tiers.length > 5, `expected the tiers in the effective config, received ${JSON.stringify(tiers)}`);
  const picture = tiers.map((tier) => tier.map((f) => `${f}/`).join(', ')).join('  →  ');
  const doc = fs.readFileSync(path.join(REPO_ROOT, 'ARCHITECTURE.md'), 'utf8');
  assert.ok(doc.includes(`    ${picture}\n`), `expected ARCHITECTURE.md to hold the line\n    ${picture}`);
});
