/**
 * Small HTTP helpers for the prediction server over Node's built-in `http` module: JSON responses and errors,
 * security headers, and a request-body reader that enforces a byte limit and a minimum rate while the body streams in.
 *
 * What it is not: a framework. Routing lives in server.ts; no CORS headers are ever sent, so no other
 * origin can read an answer.
 * References: Node http (IncomingMessage, ServerResponse), RFC 9110 (413, 415, 422, 503 + Retry-After),
 * OWASP File Upload Cheat Sheet (limit size; decide by content, not by Content-Type).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** An error that becomes a JSON response `{ "error": { "code", "message" } }` with `status`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** Sent with every response: no sniffing, no framing, no referrer, scripts and data only from this origin. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Content-Security-Policy':
    "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; connect-src 'self'; " +
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
});

function writeResponse(res: ServerResponse, status: number, body: string | Buffer, contentType: string, headers: Record<string, string>): Buffer {
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'Content-Type': contentType,
    'Content-Length': String(buf.length),
    'Cache-Control': 'no-store',
    ...headers,
  });
  return res.req.method === 'HEAD' ? Buffer.alloc(0) : buf;
}

export function send(res: ServerResponse, status: number, body: string | Buffer, contentType: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.end(writeResponse(res, status, body, contentType, headers));
}

export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  send(res, status, `${JSON.stringify(value)}\n`, 'application/json; charset=utf-8', headers);
}

export function sendError(res: ServerResponse, err: HttpError): void {
  sendJson(res, err.status, { error: { code: err.code, message: err.message } }, err.headers);
}

/**
 * The minimum upload rate: once `graceMs` have passed since the body began, a body whose average rate is
 * below `minBytesPerSec` is too slow. Without it, a client that declares a large Content-Length and sends a
 * byte every few seconds holds an upload slot (and a socket) until the request timeout, and a few of them
 * hold every slot. 0 turns the check off.
 */
export interface UploadRate {
  minBytesPerSec: number;
  graceMs: number;
}

/** Calls `onSlow` once the body is below the rate; `count` adds received bytes, `stop` ends the watch. */
function watchRate(rate: UploadRate | undefined, onSlow: (received: number, ms: number) => void): { count(n: number): void; stop(): void } {
  let received = 0;
  if (!rate || rate.minBytesPerSec <= 0) return { count: (n) => void (received += n), stop: () => undefined };
  const t0 = performance.now();
  // checked often enough that a slow body is cut within about a tenth of the grace period after it ends
  const timer = setInterval(() => {
    const ms = performance.now() - t0;
    if (ms >= rate.graceMs && received < (rate.minBytesPerSec * ms) / 1000) {
      clearInterval(timer);
      onSlow(received, ms);
    }
  }, Math.max(20, Math.min(1000, Math.floor(rate.graceMs / 10))));
  timer.unref();
  return { count: (n) => void (received += n), stop: () => clearInterval(timer) };
}

/** The 408 of a body below the minimum rate; `Connection: close` because the socket is destroyed after it. */
export function tooSlow(rate: UploadRate, received: number, ms: number): HttpError {
  return new HttpError(
    408,
    'upload-too-slow',
    `request body: expected at least ${rate.minBytesPerSec} bytes/s after the first ${rate.graceMs / 1000} s, ` +
      `received ${received} bytes in ${(ms / 1000).toFixed(1)} s (connection closed)`,
    { Connection: 'close' },
  );
}

/**
 * Answers `err` and then destroys the socket, whatever the client still sends: for a client that is cut
 * off (too slow), where draining its body would give it back the time it was refused. The response is
 * written first, so a client that reads while it sends sees why.
 */
export function sendErrorAndClose(req: IncomingMessage, res: ServerResponse, err: HttpError): void {
  const socket = req.socket;
  if (res.headersSent) {
    socket.destroy();
    return;
  }
  const body = `${JSON.stringify({ error: { code: err.code, message: err.message } })}\n`;
  res.end(writeResponse(res, err.status, body, 'application/json; charset=utf-8', { ...err.headers, Connection: 'close' }), () => socket.destroy());
  // a client that does not read would keep the write, and so the socket, pending
  setTimeout(() => socket.destroy(), 1000).unref();
}

/**
 * An error answered before the request body was read (413 mid-upload, 503): the whole response is written at
 * once, so the client can read it, but it is only *finished* once the client has stopped sending, because Node
 * closes the socket when a response finishes, and closing with unread bytes makes the kernel send a reset that
 * can destroy the response before the client reads it. The rest of the body is read and dropped, never kept;
 * a client that sends more than `maxBytes`, pauses for `idleMs`, takes `maxMs` in all or sends slower than
 * `rate` is cut off.
 */
export function sendErrorWhileDraining(req: IncomingMessage, res: ServerResponse, err: HttpError, rate?: UploadRate, maxBytes = 64 * 1024 * 1024, idleMs = 2000, maxMs = 30_000): void {
  if (res.headersSent) {
    req.socket.destroy();
    return;
  }
  const body = `${JSON.stringify({ error: { code: err.code, message: err.message } })}\n`;
  res.write(writeResponse(res, err.status, body, 'application/json; charset=utf-8', { ...err.headers, Connection: 'close' }));
  let seen = 0;
  const stop = (hard: boolean): void => {
    clearTimeout(idle);
    clearTimeout(total);
    watch.stop();
    req.removeListener('data', onData);
    res.end();
    if (hard) req.socket.destroy();
  };
  let idle = setTimeout(() => stop(true), idleMs);
  const total = setTimeout(() => stop(true), maxMs);
  const watch = watchRate(rate, () => stop(true));
  idle.unref();
  total.unref();
  const onData = (chunk: Buffer): void => {
    seen += chunk.length;
    watch.count(chunk.length);
    if (seen > maxBytes) return stop(true);
    clearTimeout(idle);
    idle = setTimeout(() => stop(true), idleMs);
    idle.unref();
  };
  req.on('data', onData);
  req.once('end', () => stop(false));
  req.resume();
}

/**
 * Reads the whole request body, refusing more than `limit` bytes with 413: at once when Content-Length
 * declares too much, otherwise as soon as the streamed (or chunked) body passes the limit, so at most
 * `limit` + one chunk is ever held in memory. A body below `rate` is refused with 408 (tooSlow).
 */
export function readBody(req: IncomingMessage, limit: number, rate?: UploadRate): Promise<Buffer> {
  const tooLarge = (received: string): HttpError =>
    new HttpError(413, 'body-too-large', `request body: expected at most ${limit} bytes, received ${received}`);
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    return Promise.reject(tooLarge(`a Content-Length of ${declared}`));
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let done = false;
    const finish = (err: Error | null): void => {
      if (done) return;
      done = true;
      watch.stop();
      req.removeListener('data', onData);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks, total));
    };
    const watch = watchRate(rate, (received, ms) => {
      chunks.length = 0;
      finish(tooSlow(rate as UploadRate, received, ms));
    });
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      watch.count(chunk.length);
      if (total > limit) {
        chunks.length = 0;
        finish(tooLarge(`more (${total} bytes so far)`));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => finish(null));
    req.once('error', (err) => finish(new HttpError(400, 'bad-body', `request body: the upload failed (${err.message})`)));
    req.once('close', () => {
      if (!req.complete) finish(new HttpError(400, 'bad-body', 'request body: the client closed the connection before the body ended'));
    });
  });
}
