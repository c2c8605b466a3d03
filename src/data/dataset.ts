/**
 * openDataset: one entry point for every way a user has CIFAR-10 — an ImageFolder tree (folder or tar/tar.gz),
 * the official binary release (folder or cifar-10-binary.tar.gz), or "cifar10" (downloaded into the cache
 * folder) — returning decoded 32x32 RGB splits, through the decode cache.
 *
 * Flow: resolve the spec to a source and its cache key (cheap: a folder walk with stat, or one stat of an
 * archive) -> a cache file with that key is loaded -> otherwise decode everything and write the cache.
 * Two identities, on purpose: the cache key (paths, sizes, mtimes) says cheaply whether the source may have
 * changed; the fingerprint (a hash of the decoded classes, labels and pixels, see contentFingerprint) says
 * whether two datasets are the same data, so a copied, moved or re-extracted dataset still resumes a run.
 * Not here: the formats themselves (imagefolder.ts, archive.ts, cifar-binary.ts), batching (loader.ts).
 */
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join, resolve, sep } from 'node:path';
import { createHash } from 'node:crypto';
import { SingleBar } from 'cli-progress';
import { isTarPath, readTarArchive } from './archive';
import { IMAGE_BYTES } from './normalize';
import { cacheFilePath, CachedData, defaultCacheDir, readCache, writeCache } from './cache';
import { CIFAR10_ARCHIVE_NAME, downloadCifar10, findBinaryRoot, META_FILE, readBinaryRelease, verifyOfficialArchive } from './cifar-binary';
import { decodeSplit, DecodeSplitOptions, isImagePath, Listing, planImageFolder, PlannedSplit } from './imagefolder';
import { displayName, invalidNamesNote, isValidUtf8 } from './names';
import type { CacheInfo, CifarData, Split, SourceKind } from './types';

export interface OpenDatasetOptions {
  /** a bad image is logged and skipped (default), or stops the run */
  onBadImage?: 'skip' | 'fail';
  /** default $RESNET_CACHE_DIR or ~/.cache/resnet-ts; also where "cifar10" is downloaded */
  cacheDir?: string;
  /** neither read nor write the decode cache */
  noCache?: boolean;
  /** refuse (as bad files) images that are not 32x32 instead of resizing them */
  strictSize?: boolean;
  /** pixel limit per image (default DEFAULT_MAX_PIXELS of decode.ts) */
  maxPixels?: number;
  log?: (msg: string) => void;
  /** show a progress bar on stderr while decoding (only on a terminal) */
  progress?: boolean;
}

interface Source {
  kind: 'folder' | 'archive';
  path: string;
  /** sha256 of the source's paths, sizes and mtimes: a change makes the decode cache stale */
  key: string;
  listing?: Listing;
}

/** Files whose identity the cache key covers: images and the binary release's files. */
const relevant = (p: string): boolean => isImagePath(p) || p.endsWith('.bin') || basename(p) === META_FILE;

const SEP = Buffer.from(sep);

/**
 * Recursive listing of a folder (names starting with "." skipped, symlinks followed, loops cut). Names are read
 * as bytes: one that is not valid UTF-8 is listed under its displayName, with the bytes to open it in rawPaths.
 */
export function listFolder(root: string): Listing {
  const listing: Listing = { files: [], dirs: [], rawPaths: new Map(), notes: [] };
  const seen = new Set<string>();
  let invalid = 0;
  const walk = (abs: Buffer, rel: string, raw: boolean): void => {
    // .native: the JS realpath decodes a Buffer path as UTF-8 on the way, which loses what is not
    const real = realpathSync.native(abs, { encoding: 'buffer' }).toString('latin1');
    if (seen.has(real)) return; // a symlink loop, or the same folder twice
    seen.add(real);
    for (const e of readdirSync(abs, { withFileTypes: true, encoding: 'buffer' })) {
      if (e.name[0] === 0x2e) continue; // "."
      const a = Buffer.concat([abs, SEP, e.name]);
      const valid = isValidUtf8(e.name);
      const name = displayName(e.name);
      const r = rel === '' ? name : `${rel}/${name}`;
      let st;
      try {
        st = statSync(a);
      } catch {
        continue; // a dangling symlink or a file deleted while listing: not part of the dataset
      }
      if (!valid && (st.isDirectory() || st.isFile())) invalid++;
      if (st.isDirectory()) {
        listing.dirs.push(r);
        walk(a, r, raw || !valid);
      } else if (st.isFile()) {
        listing.files.push({ path: r, size: st.size, mtimeMs: st.mtimeMs });
        if (raw || !valid) listing.rawPaths?.set(r, a);
      }
    }
  };
  walk(Buffer.from(root), '', false);
  if (invalid > 0) listing.notes?.push(invalidNamesNote(root, invalid));
  return listing;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The identity of a dataset's content: sha256 over the class names and, per split, the count, labels and
 * pixels (what training sees). Independent of where the files are, their names and mtimes, and the format
 * they came in. About 0.1 s for CIFAR-10, paid only when decoding (the cache stores it).
 */
export function contentFingerprint(d: Pick<CifarData, 'classes' | 'train' | 'test'>): string {
  const h = createHash('sha256').update(`resnet-ts dataset v1\n${JSON.stringify(d.classes)}\n`);
  for (const s of [d.train, d.test]) {
    h.update(`${s.n}\n`);
    h.update(s.labels.subarray(0, s.n));
    h.update(s.images.subarray(0, s.n * IMAGE_BYTES));
  }
  return `sha256:${h.digest('hex')}`;
}

async function resolveSource(spec: string, cacheDir: string, log: (m: string) => void): Promise<Source> {
  let path: string;
  if (spec === 'cifar10') {
    path = join(cacheDir, CIFAR10_ARCHIVE_NAME);
    if (!existsSync(path)) path = await downloadCifar10({ cacheDir, log });
  } else {
    path = resolve(spec);
  }
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new Error(`data ${spec}: no such file or folder (expected an ImageFolder root, a CIFAR-10 binary folder, a .tar/.tar.gz, or "cifar10")`);
  }
  if (st.isDirectory()) {
    const listing = listFolder(path);
    const lines = listing.files.filter((f) => relevant(f.path)).map((f) => `${f.path}\t${f.size}\t${f.mtimeMs}`);
    return { kind: 'folder', path, listing, key: sha256(`folder\n${path}\n${lines.join('\n')}`) };
  }
  if (!isTarPath(path)) throw new Error(`data ${spec}: expected a folder, a .tar/.tar.gz/.tgz archive, or "cifar10"; received a file of another kind`);
  return { kind: 'archive', path, key: sha256(`archive\n${path}\t${st.size}\t${st.mtimeMs}`) };
}

function progressBar(enabled: boolean, total: number): { tick: () => void; stop: () => void } {
  if (!enabled || !process.stderr.isTTY) return { tick: () => undefined, stop: () => undefined };
  const bar = new SingleBar({ stream: process.stderr, format: 'decoding [{bar}] {value}/{total} images, eta {eta}s', hideCursor: true });
  bar.start(total, 0);
  return { tick: () => bar.increment(), stop: () => bar.stop() };
}

const EMPTY_SPLIT: Split = { n: 0, images: new Uint8Array(0), labels: new Uint8Array(0), names: [] };

async function decodeTree(listing: Listing, read: (p: string) => Promise<Uint8Array>, where: string, o: DecodeSplitOptions & { progress: boolean }): Promise<Omit<CachedData, 'fingerprint' | 'source'> & { root: string }> {
  const plan = planImageFolder(listing, where);
  for (const n of plan.notes) o.log(n);
  const bar = progressBar(o.progress, plan.train.files.length + (plan.test?.files.length ?? 0));
  try {
    const run = (s: PlannedSplit) => decodeSplit(s, read, { ...o, tick: bar.tick });
    const train = await run(plan.train);
    const test = plan.test ? await run(plan.test) : null;
    const sizes = { ...train.sizes };
    for (const [k, v] of Object.entries(test?.sizes ?? {})) sizes[k] = (sizes[k] ?? 0) + v;
    return {
      root: plan.root,
      classes: plan.classes,
      train: train.split,
      test: test?.split ?? EMPTY_SPLIT,
      badFiles: [...train.badFiles, ...(test?.badFiles ?? [])],
      sizes,
      resized: train.resized + (test?.resized ?? 0),
      notes: plan.notes,
    };
  } finally {
    bar.stop();
  }
}

async function decodeSource(src: Source, spec: string, o: DecodeSplitOptions & { progress: boolean }): Promise<CachedData> {
  const binarySizes = { '32x32': 60000 };
  const done = (kind: SourceKind, root: string, body: Omit<CachedData, 'fingerprint' | 'source'>): CachedData => ({
    ...body, fingerprint: contentFingerprint(body), source: { kind, path: src.path, root },
  });
  if (src.kind === 'folder' && src.listing) {
    const binRoot = findBinaryRoot(src.listing.files.map((f) => f.path));
    if (binRoot !== null) {
      const dir = join(src.path, binRoot);
      const rel = await readBinaryRelease(async (name) => (existsSync(join(dir, name)) ? readFileSync(join(dir, name)) : null), dir);
      return done('cifar-binary', binRoot, { ...rel, badFiles: [], sizes: binarySizes, resized: 0, notes: [] });
    }
    const raw = src.listing.rawPaths;
    const { root, ...body } = await decodeTree(src.listing, (p) => readFile(raw?.get(p) ?? join(src.path, p)), spec, o);
    return done('imagefolder', root, body);
  }
  if (basename(src.path) === CIFAR10_ARCHIVE_NAME) await verifyOfficialArchive(src.path);
  const contents = await readTarArchive(src.path, relevant);
  const binRoot = findBinaryRoot(contents.listing.files.map((f) => f.path));
  if (binRoot !== null) {
    const at = (name: string): string => (binRoot === '' ? name : `${binRoot}/${name}`);
    const rel = await readBinaryRelease(async (name) => contents.data.get(at(name)) ?? null, `${src.path}:${binRoot}`);
    return done('cifar-binary-archive', binRoot, { ...rel, badFiles: [], sizes: binarySizes, resized: 0, notes: [] });
  }
  const read = async (p: string): Promise<Uint8Array> => {
    const b = contents.data.get(p);
    if (b === undefined) throw new Error('not in the archive');
    return b;
  };
  const { root, ...body } = await decodeTree(contents.listing, read, spec, o);
  return done('imagefolder-archive', root, body);
}

/**
 * Opens a dataset: a folder (ImageFolder root, a single <class>/<image> tree, or the official binary folder),
 * a .tar/.tar.gz holding one of those, or "cifar10" (the official release, downloaded on first use).
 */
export async function openDataset(spec: string, opts: OpenDatasetOptions = {}): Promise<CifarData> {
  const t0 = performance.now();
  const log = opts.log ?? (() => undefined);
  const onBadImage = opts.onBadImage ?? 'skip';
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const src = await resolveSource(spec, cacheDir, log);
  const cachePath = opts.noCache ? null : cacheFilePath(cacheDir, { source: src.path, strictSize: !!opts.strictSize, maxPixels: opts.maxPixels ?? null });
  let status: CacheInfo['status'] = 'miss';
  if (cachePath !== null) {
    const r = readCache(cachePath, src.key);
    if (r.status === 'hit') {
      const bad = r.data.badFiles;
      if (onBadImage === 'fail' && bad.length > 0) {
        throw new Error(`data ${spec}: ${bad.length} bad files (recorded in the cache), first: image ${bad[0].path}: ${bad[0].reason} (--on-bad-image fail)`);
      }
      return { ...r.data, cache: { status: 'hit', path: cachePath, ms: performance.now() - t0 } };
    }
    if (r.status === 'corrupt') log(`cache ${cachePath}: ${r.reason}; decoding again`);
    if (r.status === 'stale' || r.status === 'corrupt') status = 'stale';
  }
  const body = await decodeSource(src, spec, { onBadImage, strictSize: !!opts.strictSize, maxPixels: opts.maxPixels, log, progress: !!opts.progress });
  if (cachePath !== null) {
    try {
      writeCache(cachePath, src.key, body);
    } catch (err) {
      log(`cache ${cachePath}: not written (${err instanceof Error ? err.message : String(err)})`);
      status = 'unwritable';
    }
  }
  return { ...body, cache: { status: cachePath === null ? 'disabled' : status, path: cachePath, ms: performance.now() - t0 } };
}
