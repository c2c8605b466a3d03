/**
 * The web page's files (web/ in the package): a fixed table of routes to files, read once at startup.
 * No path from a request ever reaches the file system, so `..`, encoded slashes or NUL bytes cannot
 * escape the folder.
 *
 * What it is not: a general static file server, and not a build step: the page is plain HTML/CSS/JS.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Asset {
  readonly body: Buffer;
  readonly contentType: string;
}

/** route → file in web/ */
export const WEB_ROUTES: Readonly<Record<string, string>> = Object.freeze({
  '/': 'index.html',
  '/index.html': 'index.html',
  '/app.js': 'app.js',
  '/style.css': 'style.css',
  '/dashboard': 'dashboard.html',
  '/dashboard.html': 'dashboard.html',
  '/dashboard.js': 'dashboard.js',
  '/chart.js': 'chart.js',
  '/favicon.svg': 'favicon.svg',
});

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * The web/ folder: found by walking up from this file, since the compiled file (dist/src/serve) and the
 * source (src/serve, under tsx) sit at different depths below the package root.
 */
export function findWebDir(start: string = __dirname): string {
  let dir = start;
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'web');
    if (fs.existsSync(path.join(candidate, 'index.html'))) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error(`serve: expected the page's files in a web/ folder above ${start}, found none (is the package complete?)`);
}

export function loadAssets(webDir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const [route, file] of Object.entries(WEB_ROUTES)) {
    const p = path.join(webDir, file);
    let body: Buffer;
    try {
      body = fs.readFileSync(p);
    } catch (err) {
      throw new Error(`serve: expected the page file ${p}, could not read it (${(err as Error).message})`, { cause: err });
    }
    assets.set(route, { body, contentType: TYPES[path.extname(file)] ?? 'application/octet-stream' });
  }
  return assets;
}
