/**
 * HTTP tests of `resnet serve` (src/serve/server.ts) with the real classifier and real (untrained) weights:
 * the API, bitwise parity with `resnet predict --json`, and the hardening (Host/Origin, body, type and pixel limits, concurrency): each refusal
 * (400, 403, 413, 415, 422, 503) is JSON and is followed by a good request that succeeds.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import sharp from 'sharp';
import { Classifier, loadClassifier } from '../../src/predict/classifier';
import { RunningServer, startServer, ServeOptions } from '../../src/serve/server';
import { runPredict } from '../../src/cli/commands/predict';
import { bombPng, ImageSet, pattern, tempDir, writeImages, writeTestWeights } from '../predict/fixtures';
import { request, Reply } from './client';

let dir = '';
let weights = '';
let images: ImageSet;
let classifier: Classifier;
let png: Buffer;
let main: RunningServer;
const servers: RunningServer[] = [];

async function serve(opts: Partial<ServeOptions> = {}): Promise<RunningServer> {
  const s = await startServer({ classifier, host: '127.0.0.1', port: 0, ...opts });
  servers.push(s);
  return s;
}

before(async () => {
  dir = tempDir('serve');
  weights = writeTestWeights(dir);
  images = await writeImages(dir);
  png = fs.readFileSync(images.good.png);
  classifier = await loadClassifier(weights);
  main = await serve();
});
after(async () => {
  await Promise.all(servers.map((s) => s.close(1000)));
  fs.rmSync(dir, { recursive: true, force: true });
});

function assertJsonError(r: Reply, status: number, code: string | RegExp): void {
  assert.equal(r.status, status, r.text);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  assert.equal(typeof r.json?.error?.message, 'string', r.text);
  if (typeof code === 'string') assert.equal(r.json.error.code, code);
  else assert.match(r.json.error.code, code);
  assert.ok(!/\n\s+at /.test(r.text), 'no stack trace in a response');
}

async function goodRequest(s: RunningServer = main): Promise<void> {
  const r = await request(s.url, '/api/predict', { body: png });
  assert.equal(r.status, 200, `a good request after the refusal: ${r.text}`);
  assert.equal(r.json.probs.length, 10);
}

describe('API', () => {
  test('predict: the same numbers, bit for bit, as `resnet predict --json`; content-type ignored', async () => {
    const r = await request(main.url, '/api/predict', { body: png, headers: { 'Content-Type': 'text/plain' } });
    assert.equal(r.status, 200, r.text);
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => (text += c));
    const code = await runPredict([images.good.png], { weights, topk: 3, json: true, lang: 'zh' }, { stdin: new PassThrough(), stdout: out, stderr: new PassThrough() });
    assert.equal(code, 0);
    const { file, ...cli } = JSON.parse(text)[0];
    assert.equal(file, images.good.png);
    for (const k of Object.keys(cli)) assert.deepEqual(r.json[k], cli[k], `field ${k}`);
    assert.deepEqual(r.json.top.map((t: { index: number }) => t.index)[0], cli.index);
    assert.deepEqual(r.json.image, { format: 'png', width: 48, height: 40, bytes: png.length });
  });

  test('health, model and the page; security headers and no CORS', async () => {
    const h = await request(main.url, '/api/health', { headers: { Origin: 'http://evil.example' } });
    assert.equal(h.status, 200);
    assert.equal(h.json.status, 'ok');
    assert.equal(h.headers['access-control-allow-origin'], undefined);
    const m = await request(main.url, '/api/model');
    assert.equal(m.json.num_classes, 10);
    assert.deepEqual(m.json.classes[0], { index: 0, label: 'airplane', label_zh: '飞机' });
    assert.equal(m.json.weights.file, 'untrained.safetensors');
    assert.equal(m.json.limits.max_body_bytes, 10 * 1024 * 1024);
    const page = await request(main.url, '/');
    assert.equal(page.status, 200);
    assert.match(page.text, /选择图片/);
    assert.match(page.text, /运行/);
    assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    for (const asset of ['/app.js', '/style.css', '/dashboard', '/dashboard.js', '/chart.js', '/favicon.svg']) {
      assert.equal((await request(main.url, asset)).status, 200, asset);
    }
  });

  test('unknown routes 404, wrong methods 405, paths never reach the file system: all JSON', async () => {
    assertJsonError(await request(main.url, '/nope'), 404, 'not-found');
    assertJsonError(await request(main.url, '/../package.json'), 404, 'not-found');
    assertJsonError(await request(main.url, '/%2e%2e/package.json'), 404, 'not-found');
    assertJsonError(await request(main.url, '/api/predict'), 405, 'method-not-allowed');
    assertJsonError(await request(main.url, '/api/health', { method: 'POST', body: 'x' }), 405, 'method-not-allowed');
    assertJsonError(await request(main.url, '/api/run'), 404, 'no-run');
    await goodRequest();
  });
});

describe('hardening', () => {
  test('binds loopback by default: a LAN address of this machine is refused', async (t) => {
    const s = await startServer({ classifier, port: 0 });
    servers.push(s);
    assert.equal((s.server.address() as net.AddressInfo).address, '127.0.0.1');
    const lan = Object.values(os.networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal);
    if (!lan) {
      t.skip('no non-loopback IPv4 address on this machine to try');
      return;
    }
    await assert.rejects(request(`http://${lan.address}:${s.port}`, '/api/health'), /ECONNREFUSED/);
  });

  test('413 for a body over 10 MiB, declared by Content-Length or streamed chunked', async () => {
    const big = Buffer.concat([png, Buffer.alloc(10 * 1024 * 1024 + 1 - png.length)]);
    assertJsonError(await request(main.url, '/api/predict', { body: big }), 413, 'body-too-large');
    await goodRequest();
    assertJsonError(await request(main.url, '/api/predict', { body: Buffer.concat([big, big]), chunkSize: 256 * 1024 }), 413, 'body-too-large');
    await goodRequest();
  });

  test('415 for what is not an image by its magic bytes (whatever its Content-Type), and for encoded bodies', async () => {
    assertJsonError(await request(main.url, '/api/predict', { body: 'hello', headers: { 'Content-Type': 'image/png' } }), 415, 'not-an-image');
    assertJsonError(await request(main.url, '/api/predict', { body: `<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>` }), 415, 'not-an-image');
    assertJsonError(await request(main.url, '/api/predict', { body: png, headers: { 'Content-Encoding': 'gzip' } }), 415, 'encoded-body');
    await goodRequest();
  });

  test('422 for an image whose header declares too many pixels, answered at once without decoding', async () => {
    const r = await request(main.url, '/api/predict', { body: bombPng(50000, 50000) });
    assertJsonError(r, 422, 'too-many-pixels');
    assert.match(r.json.error.message, /50000x50000/);
    assert.ok(r.ms < 1000, `answered in ${r.ms} ms`);
    await goodRequest();
  });

  test('400 for an empty body and a truncated image', async () => {
    assertJsonError(await request(main.url, '/api/predict', { body: Buffer.alloc(0) }), 400, 'empty');
    assertJsonError(await request(main.url, '/api/predict', { body: fs.readFileSync(images.bad.truncated) }), 400, /truncated|undecodable/);
    await goodRequest();
  });

  test('403 for a foreign Host (DNS rebinding) and a foreign Origin (CSRF)', async () => {
    assertJsonError(await request(main.url, '/api/model', { headers: { Host: 'evil.example' } }), 403, 'forbidden-host');
    assertJsonError(await request(main.url, '/api/predict', { body: png, headers: { Origin: 'http://evil.example' } }), 403, 'cross-origin');
    const same = await request(main.url, '/api/predict', { body: png, headers: { Origin: main.url } });
    assert.equal(same.status, 200);
    await goodRequest();
  });

  test('503 + Retry-After beyond the concurrent inferences; the rest succeed', async () => {
    const s = await serve({ maxConcurrent: 1 });
    // a larger image keeps the one slot busy in decoding (off the main thread) while the others arrive
    const w = 1200;
    const big = await sharp(pattern(w, w, 2), { raw: { width: w, height: w, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
    const replies = await Promise.all(Array.from({ length: 5 }, () => request(s.url, '/api/predict', { body: big })));
    const codes = replies.map((r) => r.status);
    assert.ok(codes.includes(200) && codes.includes(503), `statuses ${codes}`);
    for (const r of replies.filter((x) => x.status === 503)) {
      assertJsonError(r, 503, 'busy');
      assert.equal(r.headers['retry-after'], '1');
    }
    await goodRequest(s);
  });

  test('503 beyond the uploads in progress (slow clients hold them); slots come back when they leave', async () => {
    // all from 127.0.0.1: the per-client bound (default half of maxUploads) is raised to the whole, so that the
    // server-wide one is what refuses here (slow-upload.test.ts tests the per-client one)
    const s = await serve({ maxUploads: 2, maxUploadsPerClient: 2 });
    const slow = [0, 1].map(() => net.connect(s.port, '127.0.0.1'));
    for (const sock of slow) {
      sock.on('error', () => {});
      sock.write(`POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n`);
      sock.write(png.subarray(0, 100));
    }
    // wait until the server has both uploads in progress
    for (let i = 0; i < 100 && (await request(s.url, '/api/health')).json.uploads < 2; i++) await new Promise((r) => setTimeout(r, 20));
    const r = await request(s.url, '/api/predict', { body: png });
    assertJsonError(r, 503, 'busy');
    for (const sock of slow) sock.destroy();
    for (let i = 0; i < 100 && (await request(s.url, '/api/health')).json.uploads > 0; i++) await new Promise((r) => setTimeout(r, 20));
    await goodRequest(s);
  });

  test('a client that stalls in its headers is cut off by the timeout while others are served', async () => {
    const s = await serve({ headersTimeoutMs: 300, requestTimeoutMs: 600 });
    const sock = net.connect(s.port, '127.0.0.1');
    sock.on('error', () => {});
    sock.write('GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    let answer = '';
    sock.on('data', (c: Buffer) => (answer += c.toString('latin1')));
    const closed = new Promise<number>((resolve) => {
      const t0 = Date.now();
      sock.on('close', () => resolve(Date.now() - t0));
    });
    assert.equal((await request(s.url, '/api/health')).status, 200);
    const ms = await closed;
    assert.ok(ms < 5000, `closed after ${ms} ms`);
    assert.match(answer, /^HTTP\/1\.1 408/);
    assert.match(answer, /"error"/);
  });

  test('close(): an upload in flight finishes, later connections are refused', async () => {
    const s = await serve();
    const sock = net.connect(s.port, '127.0.0.1');
    let answer = '';
    sock.on('data', (c: Buffer) => (answer += c.toString('utf8')));
    const ended = new Promise<void>((resolve) => sock.on('close', () => resolve()));
    sock.write(`POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${png.length}\r\n\r\n`);
    sock.write(png.subarray(0, 10));
    for (let i = 0; i < 100 && (await request(s.url, '/api/health')).json.uploads < 1; i++) await new Promise((r) => setTimeout(r, 20));
    const closing = s.close(5000);
    await assert.rejects(request(s.url, '/api/health'), /ECONNREFUSED|ECONNRESET/);
    // (not end(): a client that half-closes its side has its request aborted by Node's http server)
    sock.write(png.subarray(10));
    await closing;
    await ended;
    assert.match(answer, /^HTTP\/1\.1 200 OK/);
    assert.match(answer, /"label_zh"/);
  });
});

describe('dashboard data', () => {
  test('GET /api/run/metrics returns the complete records and the next offset', async () => {
    const run = path.join(dir, 'run1');
    fs.mkdirSync(run);
    fs.writeFileSync(path.join(run, 'metrics.jsonl'), '{"type":"step","step":1,"loss":2.5}\n{"type":"ep');
    const s = await serve({ runDir: run });
    assert.deepEqual((await request(s.url, '/api/run')).json, { run: 'run1' });
    const r = await request(s.url, '/api/run/metrics?from=0');
    assert.deepEqual(r.json.records, [{ type: 'step', step: 1, loss: 2.5 }]);
    assert.equal(r.json.next, 36);
    assertJsonError(await request(s.url, '/api/run/metrics?from=-3'), 400, 'bad-offset');
  });
});
