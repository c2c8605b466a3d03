/**
 * `resnet serve` as a programmatic API: an HTTP server (Node's built-in `http`) with the classifier page,
 * its JSON API and, for a training run, a dashboard.
 *
 *   GET  /                   the page (web/index.html): choose, drop or paste an image, run, see the result
 *   GET  /dashboard          the run's loss and accuracy curves (with --run)
 *   POST /api/predict        body = the image file's bytes → the prediction as JSON
 *   GET  /api/health         liveness, readiness and load (answered while a batch is in the forward pass)
 *   GET  /api/model          architecture, classes, weights, limits
 *   GET  /api/run            the run being watched; GET /api/run/metrics?from=OFFSET its new metrics records
 *
 * Hardening: loopback bind by default; 10 MiB body limit → 413 before buffering more;
 * the content decided by magic bytes → 415 for a non-image; the header's pixel count checked before decoding
 * → 422; bounded uploads in progress and concurrent inferences → 503 + Retry-After, uploads per client address
 * → 429 + Retry-After; a body below the minimum upload rate after a grace period → 408 and the socket closed;
 * header/request/idle timeouts; Host and Origin checks; every error is JSON and no stack trace leaves the process.
 * Inference: uploads are decoded, resized and normalised on a thread of their own (preprocess.ts: the JavaScript
 * resize of a large photo would otherwise hold up every other request), then classified by dynamic batching
 * (batcher.ts: requests that arrive within a few milliseconds share one forward pass) on an InferenceEngine
 * (engine.ts): with `model`, a child process of its own, restarted if it dies (its requests get 503 JSON); with
 * `classifier`, this thread. A model failure is a 500 JSON for the requests of that input only.
 * What it is not: a model manager: weights are fixed for the server's life (no reload endpoint).
 * Why no framework: five routes, and every hardening rule is a few explicit lines here.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { DEFAULT_MAX_PIXELS, ImageDecodeError } from '../data';
import type { Classifier } from '../predict/classifier';
import { Prediction, predictionToJson, topK } from '../predict/prediction';
import { DEFAULT_BATCH_DELAY_MS, DEFAULT_MAX_BATCH, DynamicBatcher, batchSizes } from './batcher';
import { EngineUnavailableError, InferenceEngine, InferenceError, ModelSource, ProcessEngine, inProcessEngine } from './engine';
import { HostPolicy, checkHost, checkSameOrigin, makeHostPolicy } from './guard';
import { HttpError, UploadRate, readBody, send, sendError, sendErrorAndClose, sendErrorWhileDraining, sendJson } from './http';
import { ConcurrencyLimiter, PerKeyLimiter } from './limiter';
import { readMetricsChunk } from './runlog';
import { checkUpload, decodeErrorToHttp } from './upload';
import { UploadPreprocessor } from './preprocess';
import { Asset, findWebDir, loadAssets } from './static';

export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;
/** 16 KiB/s: a 10 MiB upload in under 11 minutes; a byte every few seconds is cut off after the grace period */
export const DEFAULT_MIN_UPLOAD_BYTES_PER_SEC = 16 * 1024;
export const DEFAULT_UPLOAD_GRACE_MS = 5_000;
/**
 * Inferences in flight (decoding, waiting for a batch, in the forward pass). As large as a batch: a bound below
 * it would cap every batch. Memory stays bounded by the uploads (maxUploads x maxBodyBytes) and by the decoder,
 * which decodes at most libuv's thread pool (4) images at a time.
 */
export const DEFAULT_MAX_CONCURRENT = DEFAULT_MAX_BATCH;

export interface ServeOptions {
  /** the model to load in an inference process of its own (what `resnet serve` does); or: */
  readonly model?: ModelSource;
  /** a classifier already loaded, run on this thread (forward passes then hold up every other request) */
  readonly classifier?: Classifier;
  /** the most requests one forward pass takes (default DEFAULT_MAX_BATCH) */
  readonly maxBatch?: number;
  /** how long a request waits for others to share its forward pass, in ms (default DEFAULT_BATCH_DELAY_MS) */
  readonly batchDelayMs?: number;
  /** run each batch size once (with `model`) and start the upload preprocessing thread, before listening: the first
   * forward of a size and the first upload are slow otherwise (default false) */
  readonly warmup?: boolean;
  /** with `model`: a batch not answered in this time ends the inference process, which is started again */
  readonly inferenceTimeoutMs?: number;
  readonly host?: string; // default 127.0.0.1
  readonly port?: number; // default 8080; 0 picks a free port
  readonly runDir?: string;
  readonly maxBodyBytes?: number;
  readonly maxPixels?: number;
  /** inferences in flight (decode, batch queue and forward; default DEFAULT_MAX_CONCURRENT); beyond → 503 */
  readonly maxConcurrent?: number;
  /** uploads being received or classified at once; beyond → 503 (bounds memory at about this × maxBodyBytes) */
  readonly maxUploads?: number;
  /** uploads in progress from one client address; beyond → 429 (default: half of maxUploads) */
  readonly maxUploadsPerClient?: number;
  /** after uploadGraceMs, a body slower than this on average → 408 and the socket closed; 0 turns it off */
  readonly minUploadBytesPerSec?: number;
  readonly uploadGraceMs?: number;
  readonly headersTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  readonly idleTimeoutMs?: number;
  /** host names accepted in the Host header besides IP literals and localhost */
  readonly allowHosts?: readonly string[];
  readonly webDir?: string;
  /** one line per request and per server-side failure (default: none) */
  readonly log?: (line: string) => void;
}

export interface RunningServer {
  readonly server: http.Server;
  /** where the forward passes run (the inference process with `model`) */
  readonly engine: InferenceEngine;
  readonly url: string;
  readonly port: number;
  /**
   * Stops accepting, answers new requests 503, lets in-flight ones finish for up to graceMs; then those still
   * decoding or waiting for inference are answered 503 JSON, and the connections and the engine are closed.
   */
  close(graceMs?: number): Promise<void>;
}

interface Ctx {
  readonly opts: ServeOptions;
  readonly engine: InferenceEngine;
  readonly batcher: DynamicBatcher;
  readonly preprocessor: UploadPreprocessor;
  readonly assets: Map<string, Asset>;
  readonly hostPolicy: HostPolicy;
  readonly maxBodyBytes: number;
  readonly maxPixels: number;
  readonly inferences: ConcurrencyLimiter;
  readonly uploads: ConcurrencyLimiter;
  readonly uploadsPerClient: PerKeyLimiter;
  readonly uploadRate: UploadRate;
  readonly startedAt: number;
  closing: boolean;
}

const busy = (what: string, max: number): HttpError =>
  new HttpError(503, 'busy', `${what}: all ${max} slots are in use, retry shortly`, { 'Retry-After': '1' });

const shuttingDown = (): HttpError =>
  new HttpError(503, 'shutting-down', 'server: shutting down, not accepting requests', { Connection: 'close' });

const tooManyFromClient = (max: number): HttpError =>
  new HttpError(429, 'too-many-uploads', `uploads: this client already has ${max} uploads in progress (the most one address may have), retry once one ends`, { 'Retry-After': '1' });


/** Decodes an upload and classifies it in the next batch; failures become the HttpError a client can act on. */
async function classifyUpload(ctx: Ctx, bytes: Buffer): Promise<Prediction> {
  let x: Float32Array;
  try {
    x = (await ctx.preprocessor.preprocess(bytes, ctx.maxPixels)).x;
  } catch (err) {
    if (err instanceof ImageDecodeError) throw decodeErrorToHttp(err);
    if (ctx.closing) throw shuttingDown();
    ctx.opts.log?.(`${err instanceof Error ? err.message : String(err)}`);
    throw new HttpError(500, 'preprocessing-failed', 'upload: the image could not be prepared for the model; see the server log');
  }
  try {
    return await ctx.batcher.classify(x);
  } catch (err) {
    if (err instanceof HttpError) throw err;
    if (err instanceof EngineUnavailableError) {
      if (ctx.closing) throw shuttingDown();
      ctx.opts.log?.(`inference unavailable: ${err.message}`);
      throw new HttpError(503, 'inference-unavailable', 'inference: the model is restarting after a failure, retry shortly', { 'Retry-After': '1' });
    }
    if (err instanceof InferenceError) {
      ctx.opts.log?.(`inference failed: ${err.message}`);
      throw new HttpError(500, 'inference-failed', 'inference: the model could not classify this image; see the server log');
    }
    throw err;
  }
}

async function handlePredict(ctx: Ctx, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  checkSameOrigin(req);
  const enc = req.headers['content-encoding'];
  if (enc !== undefined && enc.toLowerCase() !== 'identity') {
    throw new HttpError(415, 'encoded-body', `request body: expected no Content-Encoding, received ${JSON.stringify(enc)} (send the file's bytes as they are)`);
  }
  // the server's bound first: when every slot is taken the answer is 503 for everyone, whoever holds them
  const releaseUpload = ctx.uploads.tryAcquire();
  if (!releaseUpload) throw busy('uploads', ctx.uploads.max);
  const releaseClient = ctx.uploadsPerClient.tryAcquire(req.socket.remoteAddress ?? '');
  if (!releaseClient) {
    releaseUpload();
    throw tooManyFromClient(ctx.uploadsPerClient.max);
  }
  try {
    const bytes = await readBody(req, ctx.maxBodyBytes, ctx.uploadRate);
    const image = checkUpload(ctx.maxPixels, req, bytes);
    const release = ctx.inferences.tryAcquire();
    if (!release) throw busy('inference', ctx.inferences.max);
    const t0 = performance.now();
    let p: Prediction;
    try {
      p = await classifyUpload(ctx, bytes);
    } finally {
      release();
    }
    const ms = Math.round((performance.now() - t0) * 100) / 100;
    const top = topK(p, 3).map((c) => ({ index: c.index, label: c.label, label_zh: c.labelZh, prob: c.prob }));
    sendJson(res, 200, { ...predictionToJson(p), top, image: { ...image, bytes: bytes.length }, ms });
  } finally {
    releaseUpload();
    releaseClient();
  }
}

function modelJson(ctx: Ctx): unknown {
  const info = ctx.engine.info;
  return {
    arch: info.arch,
    width: info.spec.width,
    num_classes: info.numClasses,
    classes: info.classes.map((c) => ({ index: c.index, label: c.en, label_zh: c.zh })),
    input_shape: info.inputShape,
    backend: info.backend,
    // the file name only: the page has no use for the server's directory layout
    weights: { file: path.basename(info.weights.path), format: info.weights.format, notes: info.weights.notes },
    limits: {
      max_body_bytes: ctx.maxBodyBytes,
      max_pixels: ctx.maxPixels,
      max_concurrent: ctx.inferences.max,
      max_uploads: ctx.uploads.max,
      max_uploads_per_client: ctx.uploadsPerClient.max,
      min_upload_bytes_per_sec: ctx.uploadRate.minBytesPerSec,
      max_batch: ctx.batcher.maxBatch,
      batch_delay_ms: ctx.batcher.delayMs,
    },
  };
}

async function handleRunMetrics(ctx: Ctx, url: URL, res: http.ServerResponse): Promise<void> {
  const runDir = ctx.opts.runDir as string;
  const raw = url.searchParams.get('from') ?? '0';
  const from = /^\d{1,15}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(from)) {
    throw new HttpError(400, 'bad-offset', `from: expected a non-negative integer byte offset, received ${JSON.stringify(raw)}`);
  }
  sendJson(res, 200, await readMetricsChunk(runDir, from));
}

/** Liveness (it answers), readiness (the engine takes requests) and load; batches: counts since the start. */
function healthJson(ctx: Ctx): unknown {
  const engine = ctx.engine.status();
  const b = ctx.batcher.stats();
  return {
    status: 'ok',
    ready: engine.ready,
    inflight: ctx.inferences.inFlight,
    uploads: ctx.uploads.inFlight,
    queued: b.queued,
    running: b.running,
    batches: { count: b.batches, requests: b.batched, largest: b.largest },
    inference: { where: engine.where, restarts: engine.restarts },
    uptime_s: Math.round((Date.now() - ctx.startedAt) / 1000),
  };
}

function requireMethod(req: http.IncomingMessage, allowed: readonly string[]): void {
  if (!allowed.includes(req.method ?? '')) {
    throw new HttpError(405, 'method-not-allowed', `${req.method} ${req.url}: expected ${allowed.join(' or ')}`, { Allow: allowed.join(', ') });
  }
}

async function route(ctx: Ctx, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  checkHost(req, ctx.hostPolicy);
  const url = new URL(req.url ?? '/', 'http://localhost');
  const p = url.pathname;
  if (ctx.closing) throw shuttingDown();
  if (p === '/api/predict') {
    requireMethod(req, ['POST']);
    return handlePredict(ctx, req, res);
  }
  requireMethod(req, ['GET', 'HEAD']);
  if (p === '/api/health') {
    sendJson(res, 200, healthJson(ctx));
  } else if (p === '/api/model') {
    sendJson(res, 200, modelJson(ctx));
  } else if (p === '/api/run' || p === '/api/run/metrics') {
    if (!ctx.opts.runDir) throw new HttpError(404, 'no-run', 'run: the server was started without --run RUN_DIR');
    if (p === '/api/run') sendJson(res, 200, { run: path.basename(path.resolve(ctx.opts.runDir)) });
    else await handleRunMetrics(ctx, url, res);
  } else {
    const asset = ctx.assets.get(p);
    if (!asset) throw new HttpError(404, 'not-found', `${p}: no such page or API route`);
    send(res, 200, asset.body, asset.contentType);
  }
}

async function handle(ctx: Ctx, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const t0 = performance.now();
  try {
    await route(ctx, req, res);
  } catch (err) {
    const httpErr =
      err instanceof HttpError ? err : new HttpError(500, 'internal', 'server: the request failed inside the server; see its log');
    if (!(err instanceof HttpError)) ctx.opts.log?.(`error ${req.method} ${req.url}: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    if (req.complete) sendError(res, httpErr);
    else if (httpErr.code === 'upload-too-slow') sendErrorAndClose(req, res, httpErr);
    else sendErrorWhileDraining(req, res, httpErr, ctx.uploadRate);
  } finally {
    ctx.opts.log?.(`${req.method} ${req.url} ${res.statusCode} ${Math.round(performance.now() - t0)}ms`);
  }
}

/**
 * Node answers unparsable requests and timeouts itself, in plain text; these get JSON like every other error.
 * The socket is then destroyed, not only ended: the server's sockets are half-open, so after end() a client
 * that keeps sending would keep the socket, and the request's upload slot, for as long as it likes.
 */
function onClientError(err: NodeJS.ErrnoException, socket: import('node:stream').Duplex): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
  const body = JSON.stringify({ error: { code: err.code ?? 'bad-request', message: `request: ${status === 408 ? 'timed out' : 'malformed HTTP'}` } });
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
  setTimeout(() => socket.destroy(), 1000).unref();
}

/** The engine of `model` (a child process, closed with the server) or of `classifier` (this thread). */
async function startEngine(opts: ServeOptions): Promise<{ engine: InferenceEngine; owned: boolean }> {
  if ((opts.model === undefined) === (opts.classifier === undefined)) {
    throw new Error('startServer: expected exactly one of model (weights for an inference process) or classifier (loaded, run on this thread)');
  }
  if (opts.classifier) return { engine: inProcessEngine(opts.classifier), owned: false };
  const warmup = opts.warmup ? batchSizes(opts.maxBatch ?? DEFAULT_MAX_BATCH) : [];
  const engine = await ProcessEngine.start(opts.model as ModelSource, { warmup, inferenceTimeoutMs: opts.inferenceTimeoutMs, log: opts.log });
  return { engine, owned: true };
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const host = opts.host ?? '127.0.0.1';
  const headersTimeout = opts.headersTimeoutMs ?? 10_000;
  const { engine, owned } = await startEngine(opts);
  try {
    return await listen(opts, host, headersTimeout, engine, owned);
  } catch (err) {
    if (owned) await engine.close('server: failed to start');
    throw err;
  }
}

async function listen(opts: ServeOptions, host: string, headersTimeout: number, engine: InferenceEngine, owned: boolean): Promise<RunningServer> {
  const ctx: Ctx = {
    opts,
    engine,
    batcher: new DynamicBatcher(engine, { maxBatch: opts.maxBatch ?? DEFAULT_MAX_BATCH, delayMs: opts.batchDelayMs ?? DEFAULT_BATCH_DELAY_MS }),
    preprocessor: new UploadPreprocessor(opts.log),
    assets: loadAssets(opts.webDir ?? findWebDir()),
    hostPolicy: makeHostPolicy(host, opts.allowHosts),
    maxBodyBytes: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    maxPixels: opts.maxPixels ?? DEFAULT_MAX_PIXELS,
    inferences: new ConcurrencyLimiter(opts.maxConcurrent ?? DEFAULT_MAX_CONCURRENT),
    uploads: new ConcurrencyLimiter(opts.maxUploads ?? 16),
    uploadsPerClient: new PerKeyLimiter(opts.maxUploadsPerClient ?? Math.max(1, Math.floor((opts.maxUploads ?? 16) / 2))),
    uploadRate: {
      minBytesPerSec: opts.minUploadBytesPerSec ?? DEFAULT_MIN_UPLOAD_BYTES_PER_SEC,
      graceMs: opts.uploadGraceMs ?? DEFAULT_UPLOAD_GRACE_MS,
    },
    startedAt: Date.now(),
    closing: false,
  };
  const server = http.createServer({
    headersTimeout,
    requestTimeout: opts.requestTimeoutMs ?? 60_000,
    // how often Node checks the two timeouts above (its default, 30 s, would make short timeouts meaningless)
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 4))),
    keepAliveTimeout: 5_000,
  });
  server.timeout = opts.idleTimeoutMs ?? 60_000;
  // the first upload should not pay for starting the preprocessing thread either (preprocess.ts)
  if (opts.warmup) await ctx.preprocessor.warm();
  server.on('request', (req, res) => void handle(ctx, req, res));
  server.on('clientError', onClientError);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8080, host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const urlHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  let closing: Promise<void> | null = null;
  const close = (graceMs?: number): Promise<void> => (closing ??= closeServer(ctx, server, graceMs ?? 10_000, owned));
  return { server, engine, url: `http://${urlHost}:${addr.port}`, port: addr.port, close };
}

/** How long, after the grace period, the requests failed with 503 have to write their answers before the sockets close. */
const ANSWER_MS = 1000;

async function closeServer(ctx: Ctx, server: http.Server, graceMs: number, ownsEngine: boolean): Promise<void> {
  ctx.closing = true;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // a keep-alive connection becomes idle when its last response is sent: close it then, not after keepAliveTimeout
  const sweep = setInterval(() => server.closeIdleConnections(), 50);
  sweep.unref();
  server.closeIdleConnections();
  let timer: NodeJS.Timeout | undefined;
  const after = (ms: number): Promise<'timeout'> => new Promise((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  if ((await Promise.race([closed, after(graceMs)])) === 'timeout') {
    // what is still decoding, queued or in the forward pass is answered 503 now, then the sockets go
    ctx.batcher.close(shuttingDown());
    if (ownsEngine) await ctx.engine.close('server: shutting down');
    if ((await Promise.race([closed, after(ANSWER_MS)])) === 'timeout') server.closeAllConnections();
  }
  clearTimeout(timer);
  await closed;
  clearInterval(sweep);
  ctx.batcher.close(shuttingDown());
  await ctx.preprocessor.close();
  if (ownsEngine) await ctx.engine.close('server: closed');
}
