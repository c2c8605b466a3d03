// ESLint rule `layering/folders`: a file in src/<folder>/ may import only from its own folder and from folders in
// lower tiers; never from its own tier's other folders, a higher tier, or src/index.ts (the public API, for users,
// test/ and bench/). The tiers are the rule's options, written once in eslint.config.mjs; ARCHITECTURE.md draws
// them (test/lint/layering.test.ts checks that the two agree).
// Why a rule of our own rather than no-restricted-imports: that rule matches the import string, and a relative
// specifier ('../train/x' from src/cli/commands/ is '../../train/x') names a folder only once resolved.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Every static or dynamic module specifier a node carries, as its string literal node, or null. */
function specifierOf(node) {
  switch (node.type) {
    case 'ImportDeclaration':
    case 'ExportAllDeclaration':
    case 'ExportNamedDeclaration':
    case 'ImportExpression':
    case 'TSImportType':
      return node.source ?? null;
    case 'TSExternalModuleReference':
      return node.expression;
    case 'CallExpression':
      return node.callee.type === 'Identifier' && node.callee.name === 'require' ? node.arguments[0] ?? null : null;
    default:
      return null;
  }
}

/**
 * The top folder under srcRoot that `target` (a file, or a folder imported through its index) lies in; '' for
 * srcRoot itself or a file directly in it (src/index.ts); null outside srcRoot.
 */
function folderOf(srcRoot, target) {
  const rel = path.relative(srcRoot, target);
  if (rel === '') return '';
  if (rel.startsWith('..') || path.isAbsolute(rel)) return null;
  const parts = rel.split(path.sep);
  if (parts.length > 1) return parts[0];
  return fs.existsSync(target) && fs.statSync(target).isDirectory() ? parts[0] : '';
}

const rule = {
  meta: {
    type: 'problem',
    docs: { description: 'imports between the folders of src/ follow the tiers (top imports down, never up or across)' },
    schema: [{
      type: 'object',
      properties: {
        srcRoot: { type: 'string' },
        tiers: { type: 'array', items: { type: 'array', items: { type: 'string' } } },
      },
      required: ['srcRoot', 'tiers'],
      additionalProperties: false,
    }],
    messages: {
      upward: '{{from}}/ may not import {{to}}/ ({{spec}}): {{from}}/ may import only {{allowed}} (tiers in eslint.config.mjs, drawn in ARCHITECTURE.md)',
      publicApi: '{{from}}/ may not import src/index.ts ({{spec}}): it is the public API; import the module itself',
      unplaced: 'src/{{folder}}/ has no tier in eslint.config.mjs: place it there and in ARCHITECTURE.md',
    },
  },
  create(context) {
    const { srcRoot, tiers } = context.options[0];
    const tierOf = new Map(tiers.flatMap((tier, i) => tier.map((f) => [f, i])));
    const from = folderOf(srcRoot, context.filename);
    if (from === null || from === '') return {}; // outside src/, or src/index.ts itself (it may import anything)
    if (!tierOf.has(from)) {
      return { Program: (node) => context.report({ node, messageId: 'unplaced', data: { folder: from } }) };
    }
    const below = tiers.slice(tierOf.get(from) + 1).flat();
    const allowed = below.length ? below.map((f) => `${f}/`).join(', ') : 'nothing outside itself';
    const check = (node) => {
      const lit = specifierOf(node);
      if (!lit || typeof lit.value !== 'string' || !lit.value.startsWith('.')) return;
      const to = folderOf(srcRoot, path.resolve(path.dirname(context.filename), lit.value));
      if (to === null || to === from) return;
      const data = { from, to, spec: lit.value, allowed };
      if (to === '') context.report({ node: lit, messageId: 'publicApi', data });
      else if (!tierOf.has(to)) context.report({ node: lit, messageId: 'unplaced', data: { folder: to } });
      else if (tierOf.get(to) <= tierOf.get(from)) context.report({ node: lit, messageId: 'upward', data });
    };
    const visitors = {};
    for (const t of ['ImportDeclaration', 'ExportAllDeclaration', 'ExportNamedDeclaration', 'ImportExpression',
      'TSImportType', 'TSExternalModuleReference', 'CallExpression']) visitors[t] = check;
    return visitors;
  },
};

export default { rules: { folders: rule } };
