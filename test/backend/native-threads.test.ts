/**
 * The addon used from more than one thread, one after the other: oneDNN 2.6 ties the scratchpad of a primitive to
 * the thread that created it, so a primitive cached on the main thread and run in a worker thread (oneDNN's Winograd
 * convolution needs a scratchpad) crashed the process with SIGSEGV. The addon keeps one primitive cache per thread
 * (native/context.cc). The scenario runs in a child process, so that a crash fails this test instead of the runner.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nativeAvailable } from '../../src/backend/native';

const native = nativeAvailable();
const skip = native.ok ? false : `native backend unavailable: ${native.reason}`;

// main thread, then a worker thread, then the main thread again: the same Winograd-eligible convolution (3x3, stride
// 1, 64 channels) forward and backward, the outputs compared bit for bit
const SCRIPT = `
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const A = require(process.env.ADDON);
function run() {
  const xS = [4, 64, 16, 16], wS = [64, 64, 3, 3], p = { stride: [1, 1], padding: [1, 1] };
  const xd = new Float32Array(4 * 64 * 256), wd = new Float32Array(64 * 64 * 9);
  for (let i = 0; i < xd.length; i++) xd[i] = Math.sin(i * 0.37);
  for (let i = 0; i < wd.length; i++) wd[i] = Math.cos(i * 0.11) * 0.05;
  const x = A.fromArray(xd, xS), w = A.fromArray(wd, wS);
  const y = A.conv2d(x, xS, w, wS, null, p.stride, p.padding);
  const out = A.toArray(y, [4, 64, 16, 16]);
  const dx = A.conv2dBackwardData(y, w, xS, wS, p.stride, p.padding);
  const dxa = A.toArray(dx, xS);
  for (const s of [x, w, y, dx]) A.dispose(s);
  return Array.from(out.subarray(0, 64)).concat(Array.from(dxa.subarray(0, 64)));
}
if (isMainThread) {
  A.setConvPolicy('onednn-winograd');
  const first = run();
  const w = new Worker(__filename);
  w.once('message', (fromWorker) => {
    const again = run();
    const same = (a, b) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
    console.log(JSON.stringify({ workerSame: same(first, fromWorker), againSame: same(first, again), n: first.length }));
  });
  w.once('error', (e) => { console.error('worker error: ' + e.message); process.exit(2); });
} else {
  A.setConvPolicy('onednn-winograd');
  parentPort.postMessage(run());
}
`;

function addonFile(): string {
  const rel = path.join('build', 'Release', 'resnet_native.node');
  const file = [process.env.RESNET_NATIVE_ADDON ?? '', path.resolve(__dirname, '..', '..', rel), path.resolve(__dirname, '..', '..', '..', rel)]
    .find((p) => p !== '' && fs.existsSync(p));
  assert.ok(file, 'addon file');
  return file;
}

test('a convolution cached on the main thread, then run in a worker thread and on the main thread again', { skip }, () => {
  const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'resnet-threads-'));
  try {
    const script = path.join(dir, 'threads.js');
    fs.writeFileSync(script, SCRIPT);
    const r = spawnSync(process.execPath, [script], {
      encoding: 'utf8', env: { ...process.env, ADDON: addonFile(), RESNET_CONV_CACHE: 'off' }, timeout: 120_000,
    });
    assert.equal(r.signal, null, `the child died of ${r.signal}: ${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim()), { workerSame: true, againSame: true, n: 128 });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
