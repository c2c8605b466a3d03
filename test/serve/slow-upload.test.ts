/**
 * Slow uploads on loopback, with small thresholds so that each test takes a few seconds:
 * a body that trickles below the minimum rate is answered 408 and its socket closed once the grace period is
 * over, which frees its upload slot at once; one client address holds at most its share of the upload slots,
 * so the others are served while it trickles; Node's own request timeout frees the slot too.
 * The tricklers declare a Content-Length of 5000000 and send one byte at a time, as a slow-loris client does.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { loadClassifier, Classifier } from '../../src/predict/classifier';
import { RunningServer, startServer, ServeOptions } from '../../src/serve/server';
import { tempDir, writeImages, writeTestWeights } from '../predict/fixtures';
import { request } from './client';

let dir = '';
let png: Buffer;
let classifier: Classifier;
const servers: RunningServer[] = [];
const sockets: net.Socket[] = [];

before(async () => {
  dir = tempDir('slow-upload');
  classifier = await loadClassifier(writeTestWeights(dir));
  png = fs.readFileSync((await writeImages(dir)).good.png);
});
after(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(servers.map((s) => s.close(500)));
  fs.rmSync(dir, { recursive: true, force: true });
});

async function serve(opts: Partial<ServeOptions>): Promise<RunningServer> {
  const s = await startServer({ classifier, host: '127.0.0.1', port: 0, ...opts });
  servers.push(s);
  return s;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Trickler {
  /** what the server sent back, as text */
  answer(): string;
  /** resolves with the milliseconds from the start until the server closed the connection */
  closed: Promise<number>;
}

/**
 * A client that declares 5000000 bytes and sends one byte every `everyMs` until the server closes the connection.
 * Half-open like a hostile client: the server's FIN (socket.end) does not stop it, only a full close does.
 */
function trickle(port: number, everyMs: number, localAddress = '127.0.0.1'): Trickler {
  const t0 = Date.now();
  const sock = net.connect({ port, host: '127.0.0.1', localAddress, allowHalfOpen: true });
  sockets.push(sock);
  let text = '';
  sock.on('error', () => {});
  sock.on('data', (c: Buffer) => (text += c.toString('utf8')));
  sock.write('POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000000\r\n\r\n');
  let at = 0;
  const timer = setInterval(() => {
    if (!sock.destroyed && sock.writable) sock.write(png.subarray(at % png.length, (at % png.length) + 1));
    at++;
  }, everyMs);
  const closed = new Promise<number>((resolve) =>
    sock.on('close', () => {
      clearInterval(timer);
      resolve(Date.now() - t0);
    }),
  );
  return { answer: () => text, closed };
}

/** Resolves with `p`'s value, or rejects naming `what` once `ms` have passed (so a failing test stays short). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, sleep(ms).then(() => Promise.reject(new Error(`${what}: still pending after ${ms} ms`)))]);
}

async function uploadsInProgress(s: RunningServer): Promise<number> {
  return (await request(s.url, '/api/health')).json.uploads;
}

async function waitForUploads(s: RunningServer, n: number): Promise<void> {
  for (let i = 0; i < 200 && (await uploadsInProgress(s)) !== n; i++) await sleep(10);
  assert.equal(await uploadsInProgress(s), n, `uploads in progress`);
}

test('a body below the minimum rate gets 408 after the grace period, its socket closed and its slot freed', async () => {
  const s = await serve({ maxUploads: 16, maxUploadsPerClient: 16, minUploadBytesPerSec: 16 * 1024, uploadGraceMs: 500 });
  // from another loopback address (the whole of 127.0.0.0/8 is loopback on Linux), so that the request below
  // meets the server's 16 slots, not this client's
  const slow = Array.from({ length: 16 }, () => trickle(s.port, 100, '127.0.0.3'));
  await waitForUploads(s, 16);
  const full = await request(s.url, '/api/predict', { body: png });
  assert.equal(full.status, 503, 'all 16 slots are held while the grace period lasts');
  const times = await within(Promise.all(slow.map((t) => t.closed)), 4000, 'the tricklers');
  for (const ms of times) assert.ok(ms >= 500 && ms < 2500, `a trickler was closed after ${ms} ms (grace 500 ms)`);
  const answered = slow.filter((t) => /^HTTP\/1\.1 408 /.test(t.answer()));
  assert.ok(answered.length > 0, `the tricklers read a 408 before the close: ${slow[0].answer().slice(0, 80)}`);
  for (const t of answered) assert.match(t.answer(), /"code":"upload-too-slow"/);
  assert.equal(await uploadsInProgress(s), 0, 'every slot is free once the sockets are closed');
  const r = await request(s.url, '/api/predict', { body: png });
  assert.equal(r.status, 200, r.text);
});

test('one client address holds at most maxUploadsPerClient slots: the others are served while it trickles', async () => {
  const s = await serve({ maxUploads: 16, maxUploadsPerClient: 4, uploadGraceMs: 60_000 });
  const slow = Array.from({ length: 16 }, () => trickle(s.port, 200, '127.0.0.2'));
  await sleep(300);
  const refused = slow.filter((t) => /^HTTP\/1\.1 429 /.test(t.answer()));
  assert.equal(refused.length, 12, `12 of the 16 refused at once with 429; statuses ${slow.map((t) => t.answer().slice(9, 12))}`);
  assert.match(refused[0].answer(), /Retry-After: 1/i);
  assert.match(refused[0].answer(), /"code":"too-many-uploads"/);
  assert.equal(await uploadsInProgress(s), 4);
  for (let i = 0; i < 3; i++) {
    const r = await request(s.url, '/api/predict', { body: png });
    assert.equal(r.status, 200, `a normal upload from 127.0.0.1 while 127.0.0.2 trickles: ${r.text}`);
  }
});

test("Node's request timeout answers 408, closes the socket and frees the slot", async () => {
  const s = await serve({ maxUploads: 4, headersTimeoutMs: 300, requestTimeoutMs: 600, minUploadBytesPerSec: 0 });
  const slow = trickle(s.port, 100);
  await waitForUploads(s, 1);
  const ms = await within(slow.closed, 4000, 'the trickler');
  assert.ok(ms < 3000, `closed after ${ms} ms`);
  assert.match(slow.answer(), /^HTTP\/1\.1 408 /);
  await waitForUploads(s, 0);
});

test('a multipart/form-data upload gets 415 saying to send the raw bytes, with a curl --data-binary example', async () => {
  const s = await serve({});
  const boundary = '----resnetTestBoundary';
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="cat.png"\r\nContent-Type: image/png\r\n\r\n`),
    png,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const r = await request(s.url, '/api/predict', { body, headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` } });
  assert.equal(r.status, 415, r.text);
  assert.match(r.json.error.message, /multipart\/form-data/);
  assert.match(r.json.error.message, /raw bytes/);
  assert.match(r.json.error.message, /curl --data-binary @\S+ \S*\/api\/predict/);
  const bare = await request(s.url, '/api/predict', { body: `--${boundary}\r\n` });
  assert.equal(bare.status, 415);
  assert.match(bare.json.error.message, /--data-binary/, 'the hint also when the Content-Type was not sent');
});
