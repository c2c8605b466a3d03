#!/usr/bin/env node
/* global process, console, performance, setTimeout, Buffer, URL */
// `resnet serve` under load on loopback: for each number of concurrent clients (default 16 and 64), every client
// POSTs an image to /api/predict, waits for the answer and sends the next, for --seconds after a warm-up; a
// separate client asks GET /api/health every 50 ms meanwhile. Prints requests/s, p50/p99 latency of predictions,
// /api/health p50/p99/max under that load, statuses other than 200, and the mean batch the server formed.
// Figures only, no assertions.
//
//   node bench/serve-load.mjs --weights W [--clients 16,64] [--seconds 10] [--images DIR] [-- extra serve flags]
//
// It starts `node bin/resnet.js serve --port 0` (build first: npx tsc -p tsconfig.json) with upload and
// inference bounds large enough that no client is refused (--max-uploads, --max-uploads-per-client and
// --max-concurrent at the largest client count), so the figures are of the server's work, not of its refusals.
// Images: the files of --images DIR (e.g. the CIFAR-10 test JPEGs), else 64 generated 32x32 PNGs.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { listImages } from './images.mjs';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

function parseArgs(argv) {
  const o = { weights: null, clients: [16, 64], seconds: 10, warmup: 3, images: null, extra: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') { o.extra = argv.slice(i + 1); break; }
    const v = argv[++i];
    if (a === '--weights') o.weights = v;
    else if (a === '--clients') o.clients = v.split(',').map(Number);
    else if (a === '--seconds') o.seconds = Number(v);
    else if (a === '--warmup') o.warmup = Number(v);
    else if (a === '--images') o.images = v;
    else throw new Error(`serve-load: unknown option ${a}`);
  }
  if (!o.weights) throw new Error('serve-load: expected --weights W (a checkpoint, run folder, .safetensors or .pth)');
  return o;
}

async function loadImages(dir) {
  if (dir) {
    const files = listImages(dir);
    // every 40th file: a spread over the classes, few enough to hold in memory
    return files.filter((_, i) => i % 40 === 0).slice(0, 256).map((f) => fs.readFileSync(f));
  }
  const sharp = createRequire(path.join(root, 'package.json'))('sharp');
  return Promise.all(Array.from({ length: 64 }, (_, v) => {
    const px = Buffer.alloc(32 * 32 * 3);
    for (let i = 0; i < px.length; i++) px[i] = (i * 31 + v * 97 + ((i * 2654435761) >>> 26)) & 255;
    return sharp(px, { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer();
  }));
}

function startServer(o, maxClients) {
  const bound = String(Math.max(32, maxClients));
  const args = [path.join(root, 'bin/resnet.js'), 'serve', '--weights', o.weights, '--port', '0', '--quiet',
    '--max-uploads', bound, '--max-uploads-per-client', bound, '--max-concurrent', bound, ...o.extra];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve({ child, url: m[1] });
    });
    child.on('exit', (code) => reject(new Error(`serve-load: resnet serve exited (code ${code}) before listening`)));
  });
}

function post(agent, url, body) {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = http.request(url + '/api/predict', { method: 'POST', agent, headers: { 'Content-Length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t0 }));
    });
    req.on('error', (e) => resolve({ status: e.code ?? 'error', ms: performance.now() - t0 }));
    req.end(body);
  });
}

function getJson(agent, url) {
  const t0 = performance.now();
  return new Promise((resolve) => {
    http.get(url, { agent }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t0, json: JSON.parse(text) }));
    }).on('error', (e) => resolve({ status: e.code ?? 'error', ms: performance.now() - t0, json: null }));
  });
}

const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN);

async function level(url, images, clients, o) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const healthAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let measuring = false;
  let stop = false;
  const lat = [];
  const statuses = {};
  let next = 0;
  const client = async () => {
    while (!stop) {
      const r = await post(agent, url, images[next++ % images.length]);
      if (!measuring) continue;
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      if (r.status === 200) lat.push(r.ms);
    }
  };
  const health = [];
  const healthLoop = async () => {
    while (!stop) {
      const r = await getJson(healthAgent, url + '/api/health');
      if (measuring) health.push(r.ms);
      await new Promise((res) => setTimeout(res, 50));
    }
  };
  const loops = [...Array.from({ length: clients }, client), healthLoop()];
  await new Promise((res) => setTimeout(res, o.warmup * 1000));
  const before = (await getJson(healthAgent, url + '/api/health')).json.batches;
  measuring = true;
  const t0 = performance.now();
  await new Promise((res) => setTimeout(res, o.seconds * 1000));
  measuring = false;
  const secs = (performance.now() - t0) / 1000;
  const after = (await getJson(healthAgent, url + '/api/health')).json.batches;
  stop = true;
  await Promise.all(loops);
  agent.destroy();
  healthAgent.destroy();
  lat.sort((a, b) => a - b);
  health.sort((a, b) => a - b);
  const batches = after.count - before.count;
  return {
    clients,
    rps: lat.length / secs,
    p50_ms: pct(lat, 50),
    p99_ms: pct(lat, 99),
    health_p50_ms: pct(health, 50),
    health_p99_ms: pct(health, 99),
    health_max_ms: health[health.length - 1],
    health_n: health.length,
    statuses,
    mean_batch: batches > 0 ? (after.requests - before.requests) / batches : NaN,
  };
}

const o = parseArgs(process.argv.slice(2));
const images = await loadImages(o.images);
const { child, url } = await startServer(o, Math.max(...o.clients));
console.log(`resnet serve at ${url}; ${images.length} images; ${o.warmup} s warm-up then ${o.seconds} s per level${o.extra.length ? `; serve flags: ${o.extra.join(' ')}` : ''}`);
console.log('clients  req/s   p50 ms   p99 ms   health p50/p99/max ms   mean batch  statuses');
const results = [];
for (const c of o.clients) {
  const r = await level(url, images, c, o);
  results.push(r);
  const f = (x, d = 1) => x.toFixed(d);
  console.log(`${String(c).padStart(7)}  ${f(r.rps).padStart(6)}  ${f(r.p50_ms).padStart(7)}  ${f(r.p99_ms).padStart(7)}   ${`${f(r.health_p50_ms)}/${f(r.health_p99_ms)}/${f(r.health_max_ms)}`.padStart(20)}   ${f(r.mean_batch).padStart(10)}  ${JSON.stringify(r.statuses)}`);
}
console.log(JSON.stringify({ url, results }));
child.kill('SIGINT');
