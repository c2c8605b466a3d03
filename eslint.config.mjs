// Lint: ESLint's recommended rules plus typescript-eslint's, over src/, test/ and bench/, and the layering of src/.
import * as path from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import layering from './lint/layering.mjs';

// The folders of src/, top tier first: a folder imports only from tiers below its own, never up or across a tier
// (no cycles). src/index.ts, the public API, may import anything and nothing in src/ imports it. ARCHITECTURE.md
// draws this same picture (test/lint/layering.test.ts checks that it does).
const TIERS = [
  ['cli'],
  ['serve', 'bench'],
  ['train', 'predict'],
  ['interop'],
  ['models', 'data', 'run'],
  ['nn'],
  ['tensor'],
  ['backend'],
  ['util'],
];

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'node_modules/**', 'web/**', 'scripts/**', 'bin/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { layering },
    rules: { 'layering/folders': ['error', { srcRoot: path.join(import.meta.dirname, 'src'), tiers: TIERS }] },
  },
);
