#!/usr/bin/env node
'use strict';
// Builds the oneDNN addon (build/Release/resnet_native.node) with node-gyp; run by `npm install` / `npm ci`
// and by `npm run build:native`.
// It is not required: when the build fails (no libdnnl-dev, no compiler) it prints what to install and exits 0,
// so that installing the package still succeeds and the reference backend keeps everything working, slowly.
// With RESNET_REQUIRE_NATIVE=1 (CI) a failed build exits 1 instead; RESNET_SKIP_NATIVE=1 skips the build.
// node-gyp is pointed at the headers that came with this Node (…/include/node) so that nothing is downloaded.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const GUIDANCE = [
  'resnet-ts: the native (oneDNN) backend was not built; the reference backend still works, slowly.',
  'To enable it on Debian/Ubuntu:  apt-get install -y libdnnl-dev libjpeg-dev g++ make python3',
  'then rebuild it:                 npm run build:native',
].join('\n');

/** node-gyp's CLI: ours (devDependency), npm's bundled one, or whatever is on PATH. */
function nodeGypCommand() {
  try {
    return [process.execPath, require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] })];
  } catch {
    const fromNpm = process.env.npm_config_node_gyp;
    if (fromNpm && fs.existsSync(fromNpm)) return [process.execPath, fromNpm];
    return ['node-gyp'];
  }
}

/** --nodedir pointing at this Node's installed headers, unless npm's config already names one. */
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = path.join(path.dirname(process.execPath), '..');
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
}

function main() {
  if (process.env.RESNET_SKIP_NATIVE === '1') {
    console.log('resnet-ts: RESNET_SKIP_NATIVE=1, native backend not built');
    return 0;
  }
  const [cmd, ...pre] = nodeGypCommand();
  const args = [...pre, 'rebuild', '--jobs=max', ...nodedirArgs()];
  console.log(`resnet-ts: building the native backend: ${[cmd, ...args].join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status === 0) {
    console.log('resnet-ts: native backend built (build/Release/resnet_native.node)');
    return 0;
  }
  const why = r.error ? r.error.message : `node-gyp exited with status ${r.status}`;
  console.error(`\n${why}\n${GUIDANCE}`);
  return process.env.RESNET_REQUIRE_NATIVE === '1' ? 1 : 0;
}

process.exit(main());
