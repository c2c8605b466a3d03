/**
 * Small HTTP helpers for the prediction server over Node's built-in `http` module: JSON responses and errors,
 * security headers, and a request-body reader that enforces a byte limit while the body streams in.
 *
 * What it is not: a framework. Routing lives in server.ts; no CORS headers are ever sent (RELIABILITY.md S11).
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
 * An error answered before the request body was read (413 mid-upload, 503): the whole response is written at
 * once, so the client can read it, but it is only *finished* once the client has stopped sending, because Node
 * closes the socket when a response finishes, and closing with unread bytes makes the kernel send a reset that
 * can destroy the response before the client reads it. The rest of the body is read and dropped, never kept;
 * a client that sends more than `maxBytes`, pauses for `idleMs` or takes `maxMs` in all is cut off.
 */
export function sendErrorWhileDraining(req: IncomingMessage, res: ServerResponse, err: HttpError, maxBytes = 64 * 1024 * 1024, idleMs = 2000, maxMs = 30_000): void {
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
    req.removeListener('data', onData);
    res.end();
    if (hard) req.socket.destroy();
  };
  let idle = setTimeout(() => stop(true), idleMs);
  const total = setTimeout(() => stop(true), maxMs);
  idle.unref();
  total.unref();
  const onData = (chunk: Buffer): void => {
    seen += chunk.length;
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
 * `limit` + one chunk is ever held in memory.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
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
      req.removeListener('data', onData);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks, total));
    };
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
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
