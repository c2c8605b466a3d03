#!/usr/bin/env node
'use strict';
// The `resnet` command: a thin launcher for the compiled CLI (npm install/npm run build makes dist/).
let main;
try {
  ({ main } = require('../dist/src/cli/main.js'));
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes('dist/src/cli/main.js')) {
    console.error('resnet: the TypeScript sources are not compiled yet; run `npm run build` in the package folder.');
    process.exit(1);
  }
  throw err;
}
main(process.argv).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  (err) => { console.error(`resnet: ${err && err.message ? err.message : err}`); process.exitCode = 1; },
);
