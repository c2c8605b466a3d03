/**
 * A small HTTP client for the server tests, over node:http so that every header (Host, Origin,
 * Content-Length) and the body's pacing can be set, which fetch does not allow.
 * Not a general client: it reads whole responses and parses JSON ones.
 */
import * as http from 'node:http';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  ms: number;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string | number>;
  body?: Buffer | string;
  /** send the body in pieces of this size without Content-Length (chunked transfer encoding) */
  chunkSize?: number;
}

export function request(base: string, pathname: string, opts: RequestOptions = {}): Promise<Reply> {
  const t0 = Date.now();
  const url = new URL(pathname, base);
  return new Promise<Reply>((resolve, reject) => {
    const body = opts.body === undefined ? undefined : Buffer.from(opts.body);
    const headers: Record<string, string | number> = { ...(opts.headers ?? {}) };
    if (body !== undefined && opts.chunkSize === undefined && headers['Content-Length'] === undefined) headers['Content-Length'] = body.length;
    const req = http.request(url, { method: opts.method ?? (body ? 'POST' : 'GET'), headers, agent: false });
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown = undefined;
        if (String(res.headers['content-type'] ?? '').startsWith('application/json')) json = JSON.parse(text);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, ms: Date.now() - t0 });
      });
      res.on('error', reject);
    });
    // the server may close while we still send a refused body: only an error before any answer counts
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    if (body === undefined) {
      req.end();
    } else if (opts.chunkSize !== undefined) {
      const size = opts.chunkSize;
      let at = 0;
      const pump = (): void => {
        while (at < body.length) {
          const more = req.write(body.subarray(at, at + size));
          at += size;
          if (!more) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    } else {
      req.end(body);
    }
  });
}
