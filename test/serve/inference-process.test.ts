/**
 * `resnet serve` with inference in a process of its own and dynamic batching (src/serve/engine.ts, batcher.ts), over
 * HTTP with real (untrained) weights: a lone request gives the numbers of `resnet predict` bit for bit; /api/health
 * is answered while a batch is in the forward pass; concurrent requests of different images each get their own
 * image's answer, as a request alone gets it (float32 rounding apart); a model that fails answers 500 JSON and the
 * server stays up; an inference process that dies (killed) or overruns the inference timeout fails its requests
 * with 503 JSON and is started again; close() finishes or fails (503 JSON) every request in flight, never a reset socket.
 * The expected numbers come from a classifier loaded here, on the test's own thread, from the same weights.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { preprocessForModel } from '../../src/data';
import { Classifier, loadClassifier } from '../../src/predict/classifier';
import { resnet18 } from '../../src/models/resnet';
import { writeSafetensorsFile } from '../../src/interop/safetensors';
import { ProcessEngine } from '../../src/serve/engine';
import { RunningServer, startServer, ServeOptions } from '../../src/serve/server';
import { pattern, tempDir, writeTestWeights } from '../predict/fixtures';
import { request, Reply } from './client';

let dir = '';
let weights = '';
let classifier: Classifier;
/** distinct images, and what the classifier on this thread says of each alone (batch 1) */
let pngs: Buffer[] = [];
let alone: ReturnType<Classifier['classifyInput']>[] = [];
const servers: RunningServer[] = [];

const N = 12;

async function serve(opts: Partial<ServeOptions> = {}): Promise<RunningServer> {
  const s = await startServer({ model: { weights }, host: '127.0.0.1', port: 0, maxUploads: 64, maxUploadsPerClient: 64, ...opts });
  servers.push(s);
  return s;
}

/** a 32x32 picture per variant, with a pixel noise of its own so that no two give the same logits */
async function image(v: number): Promise<Buffer> {
  const px = pattern(32, 32, v);
  for (let i = 0; i < px.length; i++) px[i] = (px[i] + ((i * 2654435761 + v * 97) >>> 24)) & 255;
  return sharp(px, { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer();
}

before(async () => {
  dir = tempDir('serve-worker');
  weights = writeTestWeights(dir);
  classifier = await loadClassifier(weights);
  pngs = await Promise.all(Array.from({ length: N }, (_, v) => image(v)));
  alone = await Promise.all(pngs.map(async (b) => classifier.classifyInput(await preprocessForModel(b))));
});
after(async () => {
  await Promise.all(servers.map((s) => s.close(1000)));
  fs.rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function assertJsonError(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, r.text);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  assert.equal(r.json.error.code, code, r.text);
  assert.ok(!/\n\s+at /.test(r.text), 'no stack trace in a response');
}

/** A batched answer against the image's answer alone: same class, probabilities within 1e-5, logits within 1e-5 of the largest. */
function assertSameAnswer(got: Reply, want: (typeof alone)[number], what: string): void {
  assert.equal(got.status, 200, `${what}: ${got.text}`);
  assert.equal(got.json.index, want.index, `${what}: class`);
  const scale = Math.max(1, ...want.logits.map(Math.abs));
  want.probs.forEach((p, k) => assert.ok(Math.abs(got.json.probs[k] - p) <= 1e-5, `${what}: prob ${k} ${got.json.probs[k]} vs ${p}`));
  want.logits.forEach((l, k) => assert.ok(Math.abs(got.json.logits[k] - l) <= 1e-5 * scale, `${what}: logit ${k} ${got.json.logits[k]} vs ${l}`));
}

describe('inference in a process of its own', () => {
  test('the images differ enough for a mix-up to show: their answers alone are pairwise apart beyond the tolerance', () => {
    for (let i = 0; i < N; i++) {
      for (let j = i + 1; j < N; j++) {
        const d = Math.max(...alone[i].logits.map((l, k) => Math.abs(l - alone[j].logits[k])));
        assert.ok(d > 1e-3, `images ${i} and ${j}: logits within ${d}`);
      }
    }
  });

  test('a lone request: the numbers of this thread\'s classifier on that image, bit for bit; it ran in the inference process', async () => {
    const s = await serve();
    const r = await request(s.url, '/api/predict', { body: pngs[0] });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.probs, alone[0].probs);
    assert.deepEqual(r.json.logits, alone[0].logits);
    const h = await request(s.url, '/api/health');
    assert.equal(h.json.inference.where, 'process');
    assert.equal(h.json.ready, true);
    assert.deepEqual(h.json.batches, { count: 1, requests: 1, largest: 1 });
    const m = await request(s.url, '/api/model');
    assert.equal(m.json.weights.file, 'untrained.safetensors');
    assert.equal(m.json.limits.max_batch, 32);
    assert.equal(m.json.limits.batch_delay_ms, 5);
  });

  test(`${N} concurrent requests of different images: each its own image's answer, as alone; they shared forward passes`, async () => {
    const s = await serve({ batchDelayMs: 200 });
    const replies = await Promise.all(pngs.map((b) => request(s.url, '/api/predict', { body: b })));
    replies.forEach((r, i) => assertSameAnswer(r, alone[i], `image ${i}`));
    const h = (await request(s.url, '/api/health')).json;
    assert.equal(h.batches.requests, N);
    assert.ok(h.batches.largest > 1 && h.batches.count < N, `batches ${JSON.stringify(h.batches)}`);
  });

  test('/api/health is answered while a batch is in the forward pass', async () => {
    const s = await serve({ batchDelayMs: 20, maxBatch: 16 });
    let seenRunning = 0;
    let slowest = 0;
    // rounds of 16 requests until a health reply reports a batch running (each round gives a batch of up to 16)
    for (let round = 0; round < 10 && seenRunning === 0; round++) {
      let done = false;
      const work = Promise.all(Array.from({ length: 16 }, (_, i) => request(s.url, '/api/predict', { body: pngs[i % N] }))).finally(() => (done = true));
      while (!done) {
        const h = await request(s.url, '/api/health');
        assert.equal(h.status, 200);
        slowest = Math.max(slowest, h.ms);
        if (h.json.running > 0) seenRunning = h.json.running;
      }
      for (const r of await work) assert.equal(r.status, 200, r.text);
    }
    assert.ok(seenRunning > 0, 'no health reply arrived while a batch was running');
    assert.ok(slowest < 10_000, `a health reply took ${slowest} ms`); // liveness only
  });

  test('a model that fails on its input answers 500 JSON; the server stays up and ready, the process is not restarted', async () => {
    const sd = resnet18({ seed: 7 }).stateDict();
    const fcb = sd.get('fc.bias');
    assert.ok(fcb);
    sd.set('fc.bias', { ...fcb, data: new Float32Array(fcb.data.length).fill(NaN) });
    const nanWeights = path.join(dir, 'nan.safetensors');
    writeSafetensorsFile(nanWeights, sd);
    const s = await serve({ model: { weights: nanWeights } });
    const replies = await Promise.all(pngs.slice(0, 4).map((b) => request(s.url, '/api/predict', { body: b })));
    for (const r of replies) assertJsonError(r, 500, 'inference-failed');
    const h = await request(s.url, '/api/health');
    assert.equal(h.json.ready, true);
    assert.equal(h.json.inference.restarts, 0);
    assert.equal((await request(s.url, '/api/model')).status, 200);
  });

  test('an inference process that is killed: its requests get 503 JSON, a new one is started, the next requests succeed', async () => {
    const s = await serve({ batchDelayMs: 50 });
    const replies = Promise.all(pngs.map((b) => request(s.url, '/api/predict', { body: b })));
    // kill while a batch is in the inference process: polled on every turn of the event loop, so the kill comes
    // long before a forward pass of a batch can be answered (polling /api/health every 5 ms was too slow on an idle
    // machine: the batch was already answered)
    const engine = s.engine as ProcessEngine;
    for (let i = 0; i < 1_000_000 && engine.sent === 0; i++) await new Promise((r) => setImmediate(r));
    assert.ok(engine.sent > 0, 'a batch reached the inference process');
    await engine.kill();
    const statuses = (await replies).map((r) => r.status);
    assert.ok(statuses.includes(503), `statuses ${statuses}`);
    for (const r of await replies) if (r.status !== 200) assertJsonError(r, 503, 'inference-unavailable');
    let h = (await request(s.url, '/api/health')).json;
    for (let i = 0; i < 1000 && !h.ready; i++) h = (await sleep(10), await request(s.url, '/api/health')).json;
    assert.equal(h.inference.restarts, 1);
    const again = await Promise.all(pngs.map((b) => request(s.url, '/api/predict', { body: b })));
    again.forEach((r, i) => assertSameAnswer(r, alone[i], `image ${i} after the restart`));
  });

  test('a batch over the inference timeout ends the process: 503 JSON, and a new one is started', async () => {
    const s = await serve({ inferenceTimeoutMs: 1 });
    assertJsonError(await request(s.url, '/api/predict', { body: pngs[0] }), 503, 'inference-unavailable');
    let h = (await request(s.url, '/api/health')).json;
    for (let i = 0; i < 1000 && h.inference.restarts < 1; i++) h = (await sleep(10), await request(s.url, '/api/health')).json;
    assert.equal(h.inference.restarts, 1);
    assert.equal(h.status, 'ok');
  });

  test('weights that cannot load: startServer rejects with the loader\'s message and nothing listens', async () => {
    await assert.rejects(startServer({ model: { weights: path.join(dir, 'missing.ckpt') }, port: 0 }), /missing\.ckpt/);
  });
});

describe('shutdown', () => {
  test('close(grace): the requests in flight are all answered 200, then the inference process is closed', async () => {
    const s = await serve({ batchDelayMs: 50 });
    const replies = Promise.all(pngs.map((b) => request(s.url, '/api/predict', { body: b })));
    for (let i = 0; i < 500 && (await request(s.url, '/api/health')).json.inflight < N; i++) await sleep(5);
    await s.close(120_000);
    (await replies).forEach((r, i) => assertSameAnswer(r, alone[i], `image ${i}`));
    assert.equal(s.engine.status().ready, false);
  });

  test('close(0): each request in flight is answered, 200 or 503 JSON (shutting-down), none is cut off', async () => {
    const s = await serve({ batchDelayMs: 50 });
    const replies = Promise.all(pngs.map((b) => request(s.url, '/api/predict', { body: b })));
    for (let i = 0; i < 500 && (await request(s.url, '/api/health')).json.inflight < N; i++) await sleep(5);
    await s.close(0);
    const got = await replies;
    assert.ok(got.some((r) => r.status === 503), `statuses ${got.map((r) => r.status)}`);
    got.forEach((r, i) => (r.status === 200 ? assertSameAnswer(r, alone[i], `image ${i}`) : assertJsonError(r, 503, 'shutting-down')));
    await assert.rejects(request(s.url, '/api/health'), /ECONNREFUSED/);
  });
});
