/**
 * `resnet serve` as a programmatic API: an HTTP server (Node's built-in `http`) with the classifier page,
 * its JSON API and, for a training run, a dashboard.
 *
 *   GET  /                   the page (web/index.html): choose, drop or paste an image, run, see the result
 *   GET  /dashboard          the run's loss and accuracy curves (with --run)
 *   POST /api/predict        body = the image file's bytes → the prediction as JSON
 *   GET  /api/health         liveness, readiness and load
 *   GET  /api/model          architecture, classes, weights, limits
 *   GET  /api/run            the run being watched; GET /api/run/metrics?from=OFFSET its new metrics records
 *
 * Hardening: loopback bind by default; 10 MiB body limit → 413 before buffering more;
 * the content decided by magic bytes → 415 for a non-image; the header's pixel count checked before decoding
 * → 422; bounded uploads in progress and concurrent inferences → 503 + Retry-After, uploads per client address
 * → 429 + Retry-After; a body below the minimum upload rate after a grace period → 408 and the socket closed;
 * header/request/idle timeouts; Host and Origin checks; every error is JSON and no stack trace leaves the process.
 * What it is not: a model manager: weights are fixed for the server's life (no reload endpoint).
 * Why no framework: five routes, and every hardening rule is a few explicit lines here.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { DEFAULT_MAX_PIXELS, ImageDecodeError, readImageHeaderSize, sniffImageType } from '../data';
import type { Classifier } from '../predict/classifier';
import { Prediction, predictionToJson, topK } from '../predict/prediction';
import { HostPolicy, checkHost, checkSameOrigin, makeHostPolicy } from './guard';
import { HttpError, UploadRate, readBody, send, sendError, sendErrorAndClose, sendErrorWhileDraining, sendJson } from './http';
import { ConcurrencyLimiter, PerKeyLimiter } from './limiter';
import { readMetricsChunk } from './runlog';
import { Asset, findWebDir, loadAssets } from './static';

export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;
/** 16 KiB/s: a 10 MiB upload in under 11 minutes; a byte every few seconds is cut off after the grace period */
export const DEFAULT_MIN_UPLOAD_BYTES_PER_SEC = 16 * 1024;
export const DEFAULT_UPLOAD_GRACE_MS = 5_000;

export interface ServeOptions {
  readonly classifier: Classifier;
  readonly host?: string; // default 127.0.0.1
  readonly port?: number; // default 8080; 0 picks a free port
  readonly runDir?: string;
  readonly maxBodyBytes?: number;
  readonly maxPixels?: number;
  /** inferences running at once (decode + forward); beyond → 503 */
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
  readonly url: string;
  readonly port: number;
  /** Stops accepting, answers new requests 503, lets in-flight ones finish for up to graceMs, then closes. */
  close(graceMs?: number): Promise<void>;
}

interface Ctx {
  readonly opts: ServeOptions;
  readonly classifier: Classifier;
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

const tooManyFromClient = (max: number): HttpError =>
  new HttpError(429, 'too-many-uploads', `uploads: this client already has ${max} uploads in progress (the most one address may have), retry once one ends`, { 'Retry-After': '1' });

const RAW_BYTES_HINT = 'send the raw bytes of the image file as the request body, e.g. curl --data-binary @cat.jpg http://127.0.0.1:8080/api/predict';

/** The 415 of a body that is not an image, saying what to send instead (a form upload is the usual mistake). */
function notAnImage(req: http.IncomingMessage, bytes: Buffer): HttpError {
  const type = String(req.headers['content-type'] ?? '').toLowerCase();
  // a multipart body opens with "--" and its boundary, whether or not the Content-Type was sent
  const multipart = type.startsWith('multipart/') || bytes.subarray(0, 2).toString('latin1') === '--';
  const received = multipart ? 'a multipart/form-data (form) upload' : 'something else';
  return new HttpError(415, 'not-an-image', `request body: expected a JPEG, PNG, GIF, WebP, BMP or TIFF file (by its magic bytes), received ${received}; ${RAW_BYTES_HINT}`);
}

/** Maps a decoder failure to the status a client can act on. */
function decodeErrorToHttp(err: ImageDecodeError): HttpError {
  const status: Record<string, number> = {
    'too-many-pixels': 422,
    'not-an-image': 415,
    unsupported: 415,
    empty: 400,
    truncated: 400,
    undecodable: 400,
  };
  return new HttpError(status[err.code] ?? 400, err.code, `image: ${err.reason}`);
}

/** Checks what can be checked without decoding: non-empty, an image by its magic bytes, pixel count. */
function checkUpload(ctx: Ctx, req: http.IncomingMessage, bytes: Buffer): { format: string; width?: number; height?: number } {
  if (bytes.length === 0) throw new HttpError(400, 'empty', 'request body: expected the bytes of an image file, received 0 bytes');
  const format = sniffImageType(bytes);
  if (format === null) throw notAnImage(req, bytes);
  const size = readImageHeaderSize(bytes);
  if (size !== null && size.width * size.height > ctx.maxPixels) {
    throw new HttpError(
      422,
      'too-many-pixels',
      `image: the ${format} header declares ${size.width}x${size.height} = ${size.width * size.height} pixels, more than the limit of ${ctx.maxPixels} (not decoded)`,
    );
  }
  return { format, width: size?.width, height: size?.height };
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
    const image = checkUpload(ctx, req, bytes);
    const release = ctx.inferences.tryAcquire();
    if (!release) throw busy('inference', ctx.inferences.max);
    const t0 = performance.now();
    let p: Prediction;
    try {
      p = await ctx.classifier.classifyBytes(bytes, { maxPixels: ctx.maxPixels, name: 'upload' });
    } catch (err) {
      if (err instanceof ImageDecodeError) throw decodeErrorToHttp(err);
      throw err;
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
  const info = ctx.classifier.info;
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

function requireMethod(req: http.IncomingMessage, allowed: readonly string[]): void {
  if (!allowed.includes(req.method ?? '')) {
    throw new HttpError(405, 'method-not-allowed', `${req.method} ${req.url}: expected ${allowed.join(' or ')}`, { Allow: allowed.join(', ') });
  }
}

async function route(ctx: Ctx, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  checkHost(req, ctx.hostPolicy);
  const url = new URL(req.url ?? '/', 'http://localhost');
  const p = url.pathname;
  if (ctx.closing) throw new HttpError(503, 'shutting-down', 'server: shutting down, not accepting requests', { Connection: 'close' });
  if (p === '/api/predict') {
    requireMethod(req, ['POST']);
    return handlePredict(ctx, req, res);
  }
  requireMethod(req, ['GET', 'HEAD']);
  if (p === '/api/health') {
    sendJson(res, 200, {
      status: 'ok',
      ready: true,
      inflight: ctx.inferences.inFlight,
      uploads: ctx.uploads.inFlight,
      uptime_s: Math.round((Date.now() - ctx.startedAt) / 1000),
    });
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

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const host = opts.host ?? '127.0.0.1';
  const headersTimeout = opts.headersTimeoutMs ?? 10_000;
  const ctx: Ctx = {
    opts,
    classifier: opts.classifier,
    assets: loadAssets(opts.webDir ?? findWebDir()),
    hostPolicy: makeHostPolicy(host, opts.allowHosts),
    maxBodyBytes: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    maxPixels: opts.maxPixels ?? DEFAULT_MAX_PIXELS,
    inferences: new ConcurrencyLimiter(opts.maxConcurrent ?? 2),
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
  return { server, url: `http://${urlHost}:${addr.port}`, port: addr.port, close: (graceMs) => closeServer(ctx, server, graceMs ?? 10_000) };
}

function closeServer(ctx: Ctx, server: http.Server, graceMs: number): Promise<void> {
  ctx.closing = true;
  return new Promise<void>((resolve) => {
    const force = setTimeout(() => server.closeAllConnections(), graceMs);
    // a keep-alive connection becomes idle when its last response is sent: close it then, not after keepAliveTimeout
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    force.unref();
    sweep.unref();
    server.close(() => {
      clearTimeout(force);
      clearInterval(sweep);
      resolve();
    });
    server.closeIdleConnections();
  });
}
