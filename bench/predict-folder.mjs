#!/usr/bin/env node
/* global process, console, performance, Buffer, URL */
// `resnet predict` over a folder of images (e.g. the 10,000 CIFAR-10 test JPEGs) against `resnet bench`'s inference
// rate on random inputs (its infer_img_s: the fused inference graph at --batch, 128 by default): images/s of the
// whole command, and of the command less its start-up (the time `resnet predict` takes for one image: process
// start, model load), and that rate as a share of the engine's. Figures only, no assertions.
//
//   mkdir -p /tmp/cifar && tar xzf ../shared/data/cifar10-jpg.tar.gz -C /tmp/cifar
//   node bench/predict-folder.mjs --weights W --dir /tmp/cifar/cifar10/test [--limit N] [--batch-size 128] [--bench-steps 3]
//
// --limit N: N files spread evenly over the sorted list (every k-th), given to predict as paths; default all.
//
// Runs `node bin/resnet.js` (build first: npx tsc -p tsconfig.json); `--no-bench` skips `resnet bench`.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { listImages } from './images.mjs';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const cli = path.join(root, 'bin/resnet.js');

function parseArgs(argv) {
  const o = { weights: null, dir: null, batchSize: 128, benchSteps: 3, bench: true, limit: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--no-bench') { o.bench = false; continue; }
    const v = argv[++i];
    if (a === '--weights') o.weights = v;
    else if (a === '--dir') o.dir = v;
    else if (a === '--batch-size') o.batchSize = Number(v);
    else if (a === '--bench-steps') o.benchSteps = Number(v);
    else if (a === '--limit') o.limit = Number(v);
    else throw new Error(`predict-folder: unknown option ${a}`);
  }
  if (!o.weights || !o.dir) throw new Error('predict-folder: expected --weights W and --dir FOLDER');
  return o;
}

/** Runs the CLI; resolves with its stdout and wall-clock seconds. */
function run(args) {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks = [];
    child.stdout.on('data', (c) => chunks.push(c));
    child.on('exit', (code) => {
      const secs = (performance.now() - t0) / 1000;
      if (code !== 0) reject(new Error(`predict-folder: resnet ${args[0]} exited with code ${code}`));
      else resolve({ stdout: Buffer.concat(chunks).toString('utf8'), secs });
    });
  });
}

const o = parseArgs(process.argv.slice(2));
const found = listImages(o.dir);
if (found.length === 0) throw new Error(`predict-folder: no images under ${o.dir}`);
const step = o.limit > 0 && o.limit < found.length ? found.length / o.limit : 1;
const files = step === 1 ? found : Array.from({ length: o.limit }, (_, i) => found[Math.floor(i * step)]);
const n = files.length;
const first = files[0];
const targets = step === 1 ? [o.dir] : files;
console.log(`${n} images${step === 1 ? '' : ` (of ${found.length})`} under ${o.dir}; resnet predict --batch-size ${o.batchSize}`);
const one = await run(['predict', '--weights', o.weights, '--json', first]);
console.log(`start-up (predict of one image): ${one.secs.toFixed(2)} s`);
const all = await run(['predict', '--weights', o.weights, '--json', '--batch-size', String(o.batchSize), ...targets]);
const results = JSON.parse(all.stdout);
const failed = results.filter((r) => r.error !== undefined).length;
const imgS = n / all.secs;
const imgSNet = n / Math.max(1e-9, all.secs - one.secs);
console.log(`resnet predict: ${results.length} results (${failed} failed) in ${all.secs.toFixed(2)} s: ${imgS.toFixed(1)} img/s, ${imgSNet.toFixed(1)} img/s less start-up`);
const out = { images: n, predict_s: all.secs, startup_s: one.secs, predict_img_s: imgS, predict_img_s_less_startup: imgSNet };
if (o.bench) {
  const b = JSON.parse((await run(['bench', '--json', '--steps', String(o.benchSteps)])).stdout);
  out.bench_infer_img_s = b.infer_img_s;
  out.bench_batch = b.batch ?? 128;
  out.share_of_bench = imgSNet / b.infer_img_s;
  console.log(`resnet bench: infer_img_s ${b.infer_img_s.toFixed(1)} (batch ${out.bench_batch}); predict less start-up = ${(100 * out.share_of_bench).toFixed(0)}% of it`);
}
console.log(JSON.stringify(out));
