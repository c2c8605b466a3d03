/**
 * Reads a .tar or .tar.gz (gzip detected by its magic bytes, not the name) into memory in one streaming pass:
 * the listing of files and folders, and the bytes of the files a caller wants. Nothing is extracted to disk.
 *
 * Memory: the kept files' bytes (for an ImageFolder tarball, its compressed images; for the CIFAR-10 binary
 * release, 184 MB of batches) are held until the caller has decoded them.
 * Not here: what the files mean (imagefolder.ts, cifar-binary.ts).
 * References: tar-stream (extract, async iteration of entries; ustar, pax and GNU headers); node:zlib gunzip.
 */
import { createReadStream, openSync, readSync, closeSync } from 'node:fs';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import type { Listing } from './imagefolder';
import { displayName, invalidNamesNote, isValidUtf8 } from './names';

export interface ArchiveContents {
  listing: Listing;
  /** bytes of the files `keep` accepted, by relative path */
  data: Map<string, Uint8Array>;
}

export function isTarPath(p: string): boolean {
  return /\.(tar|tar\.gz|tgz)$/i.test(p);
}

function isGzip(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(2);
    return readSync(fd, head, 0, 2, 0) === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}

/** "./a/b/", "/a/b" -> "a/b"; null for names that climb out with "..". */
function cleanPath(name: string): string | null {
  const parts = name.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.includes('..')) return null;
  return parts.join('/');
}

type TarEntry = tar.Extract extends AsyncIterable<infer E> ? E : never;

/**
 * The entry's name as bytes. Headers are decoded as latin1 (one char per byte, so nothing is lost, where UTF-8
 * would turn each invalid byte into U+FFFD and make different names equal); a pax `path` is UTF-8 by its spec.
 */
function nameBytes(h: TarEntry['header']): Buffer {
  const pax = h.pax as Record<string, string> | undefined;
  return Buffer.from(h.name, pax?.path !== undefined ? 'utf8' : 'latin1');
}

async function readEntry(entry: TarEntry): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const c of entry) chunks.push(c as Buffer);
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
}

/**
 * Lists a tar archive and keeps the bytes of the files for which keep(path) is true.
 * Throws `archive <path>: ...` for a corrupt gzip stream or a truncated tar.
 */
export async function readTarArchive(path: string, keep: (relPath: string) => boolean): Promise<ArchiveContents> {
  const listing: Listing = { files: [], dirs: [], notes: [] };
  const data = new Map<string, Uint8Array>();
  // (filenameEncoding is an option of tar-stream 3 that its type definitions lack)
  const ex = tar.extract({ filenameEncoding: 'latin1' } as Parameters<typeof tar.extract>[0]);
  let invalid = 0;
  // errors of the file or gzip stages are passed on to `ex`, whose iteration below then throws them
  const file = createReadStream(path);
  file.on('error', (e) => ex.destroy(e));
  if (isGzip(path)) {
    const gunzip = createGunzip();
    gunzip.on('error', (e) => ex.destroy(e));
    file.pipe(gunzip).pipe(ex);
  } else {
    file.pipe(ex);
  }
  try {
    for await (const entry of ex) {
      const h = entry.header;
      const bytes = nameBytes(h);
      const rel = cleanPath(displayName(bytes));
      if (rel === null || rel === '') {
        entry.resume();
        continue;
      }
      if ((h.type === 'directory' || h.type === 'file' || h.type === 'contiguous-file') && !isValidUtf8(bytes)) invalid++;
      if (h.type === 'directory') listing.dirs.push(rel);
      if (h.type === 'file' || h.type === 'contiguous-file') {
        listing.files.push({ path: rel, size: h.size ?? 0, mtimeMs: h.mtime ? h.mtime.getTime() : 0 });
        if (keep(rel)) {
          data.set(rel, await readEntry(entry));
          continue;
        }
      }
      entry.resume();
    }
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new Error(`archive ${path}: cannot read it as a tar or tar.gz (${why}); the file may be truncated or corrupt`, { cause: err });
  }
  if (invalid > 0) listing.notes?.push(invalidNamesNote(path, invalid));
  return { listing, data };
}
