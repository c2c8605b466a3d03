/**
 * Request guards of the prediction server against browser attacks:
 * - DNS rebinding: a page on evil.example whose name later resolves to 127.0.0.1 sends requests with
 *   `Host: evil.example`. Only IP literals, `localhost` and names the user allowed are accepted as Host.
 * - CSRF: a foreign page can POST to us (a "simple" request needs no CORS preflight). A state-changing or
 *   compute-spending request whose Origin is not our own origin, or whose Sec-Fetch-Site says another site
 *   sent it, is refused. Clients without Origin (curl, scripts) are not browsers and pass.
 * No CORS headers are ever sent, so other origins can never read our responses.
 *
 * What it is not: authentication. The server is for localhost; binding elsewhere prints a warning.
 * References: RFC 9110 §7.2 (Host), RFC 6454 (Origin), Fetch Metadata (Sec-Fetch-Site), OWASP CSRF cheat sheet.
 */
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { HttpError } from './http';

/** The hostname part of a Host header value (`[::1]:8080` → `::1`, `Localhost:80` → `localhost`), or null. */
export function hostnameOf(hostHeader: string): string | null {
  const h = hostHeader.trim().toLowerCase();
  if (h === '') return null;
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end < 0) return null;
    const rest = h.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return null;
    return h.slice(1, end);
  }
  const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(h);
  return m ? m[1] : null;
}

export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || h === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

export interface HostPolicy {
  /** extra host names to accept (the bind host when it is a name, and --allow-host values), lower case */
  readonly names: ReadonlySet<string>;
}

export function makeHostPolicy(bindHost: string, extra: readonly string[] = []): HostPolicy {
  const names = new Set<string>(['localhost', ...extra.map((n) => n.toLowerCase())]);
  if (isIP(bindHost) === 0) names.add(bindHost.toLowerCase());
  return { names };
}

/** Throws 403 unless the Host header names us: an IP literal, localhost, or an allowed name. */
export function checkHost(req: IncomingMessage, policy: HostPolicy): void {
  const raw = req.headers.host;
  const name = raw === undefined ? null : hostnameOf(raw);
  if (name === null) {
    throw new HttpError(400, 'bad-host', `Host header: expected host[:port], received ${JSON.stringify(raw ?? '(none)')}`);
  }
  if (isIP(name) !== 0 || policy.names.has(name)) return;
  throw new HttpError(
    403,
    'forbidden-host',
    `Host header: expected an IP address, localhost or a name allowed with --allow-host, received ${JSON.stringify(name)}`,
  );
}

/**
 * Throws 403 when a browser sent this request from another origin. Used on every API request that spends
 * compute or changes state (POST); reading GET responses cross-origin is already impossible without CORS.
 */
export function checkSameOrigin(req: IncomingMessage): void {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new HttpError(403, 'cross-site', `request: expected a same-origin request, received Sec-Fetch-Site: ${site}`);
  }
  const origin = req.headers.origin;
  if (origin === undefined) return;
  const expected = `http://${String(req.headers.host ?? '').toLowerCase()}`;
  if (origin.toLowerCase() !== expected) {
    throw new HttpError(403, 'cross-origin', `request: expected Origin ${expected}, received ${JSON.stringify(origin)}`);
  }
}
