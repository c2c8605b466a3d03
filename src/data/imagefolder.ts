/**
 * ImageFolder trees (`<root>/train/<class>/<image>`, `<root>/test/<class>/<image>`), whether they lie in a folder
 * or in a tar archive: find the root, list the classes and files, decode every image into one 32x32 RGB split.
 *
 * Label mapping as torchvision's ImageFolder: class = folder name, classes sorted, label = index; files of a class
 * in the order of Python's `sorted(os.walk(...))` then sorted file names; files matched by extension, here
 * case-insensitively. Deviations, on purpose: names starting with "." (`.ipynb_checkpoints`, macOS `._x.jpg`)
 * are ignored; test labels follow the train classes by name, so a test split missing a class keeps the mapping.
 *
 * Not here: reading archives (archive.ts), the decoder (decode.ts), the cache (cache.ts).
 * Reference: torchvision/datasets/folder.py (find_classes, make_dataset, IMG_EXTENSIONS).
 */
import { decodeImage, decodePlainJpegs, ImageDecodeError, resizeRgb } from './decode';
import { IMAGE_BYTES, IMAGE_SIZE } from './normalize';
import type { BadFile, Split } from './types';
import { mapLimit } from '../util/concurrency';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.gif', '.bmp', '.tif', '.tiff'];

export function isImagePath(p: string): boolean {
  const dot = p.lastIndexOf('.');
  return dot >= 0 && IMAGE_EXTENSIONS.includes(p.slice(dot).toLowerCase());
}

/** A file of a folder or archive, path relative and with "/" separators. */
export interface ListedFile {
  path: string;
  size: number;
  mtimeMs: number;
}

export interface Listing {
  files: ListedFile[];
  /** directories, relative; archives may omit them (then they are implied by file paths) */
  dirs: string[];
  /** a folder's files whose path is not valid UTF-8: the path shown (names.ts displayName) → the bytes to open */
  rawPaths?: Map<string, Buffer>;
  /** remarks on the listing itself (names that are not UTF-8), passed on to the plan's notes */
  notes?: string[];
}

export interface PlannedSplit {
  dir: string;
  files: { path: string; label: number }[];
  perClass: number[];
}

export interface TreePlan {
  root: string;
  classes: string[];
  train: PlannedSplit;
  test: PlannedSplit | null;
  notes: string[];
}

const hidden = (parts: string[]): boolean => parts.some((s) => s.startsWith('.'));

/** torchvision's order: sorted by (directory, file name), as `sorted(os.walk(...))` then `sorted(fnames)` */
function walkOrder(a: string, b: string): number {
  const da = a.slice(0, a.lastIndexOf('/'));
  const db = b.slice(0, b.lastIndexOf('/'));
  if (da !== db) return da < db ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function findRoot(listing: Listing, where: string): { root: string; single: boolean } {
  const roots = new Map<string, number>();
  for (const f of listing.files) {
    const parts = f.path.split('/');
    if (!isImagePath(f.path) || hidden(parts)) continue;
    for (let i = 0; i + 2 < parts.length; i++) {
      if (parts[i] === 'train') roots.set(parts.slice(0, i).join('/'), i);
    }
  }
  if (roots.size > 0) {
    const depth = Math.min(...roots.values());
    const best = [...roots].filter(([, d]) => d === depth).map(([r]) => r);
    if (best.length > 1) throw new Error(`imagefolder ${where}: several dataset roots found (${best.map((r) => r || '.').join(', ')}); point --data at one of them`);
    return { root: best[0], single: false };
  }
  const deep = listing.files.some((f) => isImagePath(f.path) && !hidden(f.path.split('/')) && f.path.includes('/'));
  if (deep) return { root: '', single: true };
  throw new Error(`imagefolder ${where}: no ImageFolder tree found: expected <root>/train/<class>/<image> (or <split>/<class>/<image>) with extensions ${IMAGE_EXTENSIONS.join(' ')}`);
}

function classesUnder(listing: Listing, dir: string): { classes: Set<string>; present: boolean } {
  const prefix = dir === '' ? '' : `${dir}/`;
  const classes = new Set<string>();
  let present = dir === '';
  const note = (rel: string, isFile: boolean): void => {
    present = true;
    const parts = rel.split('/');
    if (parts.length >= (isFile ? 2 : 1) && !parts[0].startsWith('.')) classes.add(parts[0]);
  };
  for (const d of listing.dirs) if (d === dir) present = true;
  for (const d of listing.dirs) if (d.startsWith(prefix) && d.length > prefix.length) note(d.slice(prefix.length), false);
  for (const f of listing.files) if (f.path.startsWith(prefix)) note(f.path.slice(prefix.length), true);
  return { classes, present };
}

function planSplit(listing: Listing, dir: string, classes: string[], where: string, notes: string[]): PlannedSplit {
  const prefix = dir === '' ? '' : `${dir}/`;
  const index = new Map(classes.map((c, i) => [c, i]));
  const byClass: string[][] = classes.map(() => []);
  let ignored = 0;
  for (const f of listing.files) {
    if (!f.path.startsWith(prefix)) continue;
    const parts = f.path.slice(prefix.length).split('/');
    if (parts.length < 2 || hidden(parts)) continue;
    const label = index.get(parts[0]);
    if (label === undefined) continue;
    if (isImagePath(f.path)) byClass[label].push(f.path);
    else ignored++;
  }
  if (ignored > 0) notes.push(`${dir || '.'}: ignored ${ignored} files without an image extension`);
  const shown = (dir === '' ? where : `${where}/${dir}`).replace(/\/$/, '');
  const files: { path: string; label: number }[] = [];
  const perClass = byClass.map((paths, label) => {
    paths.sort(walkOrder);
    for (const p of paths) files.push({ path: p, label });
    return paths.length;
  });
  const folders = classesUnder(listing, dir).classes;
  const emptyIdx = perClass.findIndex((n, i) => n === 0 && folders.has(classes[i]));
  if (emptyIdx >= 0) {
    throw new Error(`imagefolder ${shown}/${classes[emptyIdx]}: class folder has no image files (expected ${IMAGE_EXTENSIONS.join(' ')})`);
  }
  if (files.length === 0) throw new Error(`imagefolder ${shown}: split has no images`);
  return { dir, files, perClass };
}

/**
 * Finds the dataset root in a listing and plans both splits: classes, files in order, labels.
 * Throws on an empty class folder, a split with no images, or test classes unknown to train.
 */
export function planImageFolder(listing: Listing, where: string): TreePlan {
  const { root, single } = findRoot(listing, where);
  const join = (a: string, b: string): string => (a === '' ? b : `${a}/${b}`);
  const notes: string[] = [...(listing.notes ?? [])];
  const trainDir = single ? root : join(root, 'train');
  const classes = [...classesUnder(listing, trainDir).classes].sort();
  if (classes.length === 0) throw new Error(`imagefolder ${where}: no class folders under ${trainDir || '.'}`);
  const train = planSplit(listing, trainDir, classes, where, notes);
  let test: PlannedSplit | null = null;
  if (single) {
    notes.push(`${where}: one split (class folders at the top); it is used as train, there is no test split`);
  } else {
    const testDir = join(root, 'test');
    const t = classesUnder(listing, testDir);
    if (!t.present) {
      notes.push(`${where}: no test/ split next to train/`);
    } else if (t.classes.size === 0) {
      throw new Error(`imagefolder ${where}/${testDir}: split has no images (no class folders)`);
    } else {
      const unknown = [...t.classes].filter((c) => !classes.includes(c));
      if (unknown.length > 0) throw new Error(`imagefolder ${where}/${testDir}: classes not in train: ${unknown.join(', ')} (train has ${classes.join(', ')})`);
      const missing = classes.filter((c) => !t.classes.has(c));
      if (missing.length > 0) notes.push(`${testDir}: no folder for classes ${missing.join(', ')}`);
      test = planSplit(listing, testDir, classes, where, notes);
    }
  }
  return { root, classes, train, test, notes };
}

export interface DecodeSplitOptions {
  onBadImage: 'skip' | 'fail';
  strictSize: boolean;
  maxPixels?: number;
  log: (msg: string) => void;
  /** called after each file, for progress bars */
  tick?: () => void;
}

export interface DecodedSplit {
  split: Split;
  badFiles: BadFile[];
  /** how many images had each original size, e.g. { "32x32": 50000 } */
  sizes: Record<string, number>;
  resized: number;
}

type Decoded = { rgb: Uint8Array; size: string } | { bad: string };

async function readBytes(path: string, read: (p: string) => Promise<Uint8Array>): Promise<Uint8Array> {
  try {
    return await read(path);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new ImageDecodeError('unreadable', path, `cannot read file (${why})`);
  }
}

async function decodeOne(path: string, bytes: Uint8Array, opts: DecodeSplitOptions): Promise<{ rgb: Uint8Array; size: string }> {
  const img = await decodeImage(bytes, { name: path, maxPixels: opts.maxPixels });
  const size = `${img.width}x${img.height}`;
  if (img.width !== IMAGE_SIZE || img.height !== IMAGE_SIZE) {
    if (opts.strictSize) throw new ImageDecodeError('wrong-size', path, `expected ${IMAGE_SIZE}x${IMAGE_SIZE}, received ${size} (--strict-size)`);
  }
  return { rgb: resizeRgb(img, IMAGE_SIZE, IMAGE_SIZE), size };
}

/** Applies the bad-file policy to one failure: rethrow (fail, or not an image problem) or log and record. */
function badOrThrow(err: unknown, opts: DecodeSplitOptions): { bad: string } {
  if (!(err instanceof ImageDecodeError) || opts.onBadImage === 'fail') throw err;
  opts.log(`${err.message} (skipped)`);
  return { bad: err.reason };
}

const GROUP = 64;

/**
 * Decodes up to GROUP files: the plain 32x32 JPEGs among them in one group call (same pixels, less overhead),
 * the rest, and all of a group that failed, one by one so that a bad file is named.
 */
async function decodeChunk(files: readonly { path: string }[], read: (p: string) => Promise<Uint8Array>, opts: DecodeSplitOptions): Promise<Decoded[]> {
  const out: (Decoded | undefined)[] = new Array(files.length);
  const bytes: (Uint8Array | null)[] = [];
  for (let k = 0; k < files.length; k++) {
    try {
      bytes.push(await readBytes(files[k].path, read));
    } catch (err) {
      bytes.push(null);
      out[k] = badOrThrow(err, opts);
    }
  }
  (await decodePlainJpegs(bytes)).forEach((rgb, k) => {
    if (rgb) out[k] = { rgb, size: `${IMAGE_SIZE}x${IMAGE_SIZE}` };
  });
  for (let k = 0; k < files.length; k++) {
    if (out[k] !== undefined) continue;
    try {
      out[k] = await decodeOne(files[k].path, bytes[k]!, opts);
    } catch (err) {
      out[k] = badOrThrow(err, opts);
    }
  }
  for (let k = 0; k < files.length; k++) opts.tick?.();
  return out as Decoded[];
}

/**
 * Decodes a planned split into one NHWC uint8 array. A bad file (unreadable, empty, not an image, truncated,
 * corrupt, over the pixel limit, or the wrong size under strictSize) is logged with its reason and skipped,
 * or, with onBadImage 'fail', stops the run with that error.
 */
export async function decodeSplit(plan: PlannedSplit, read: (p: string) => Promise<Uint8Array>, opts: DecodeSplitOptions): Promise<DecodedSplit> {
  const chunks: (typeof plan.files)[] = [];
  for (let i = 0; i < plan.files.length; i += GROUP) chunks.push(plan.files.slice(i, i + GROUP));
  const results = (await mapLimit(chunks, 4, (c) => decodeChunk(c, read, opts))).flat();
  const badFiles: BadFile[] = [];
  const sizes: Record<string, number> = {};
  let n = 0;
  let resized = 0;
  const images = new Uint8Array(new SharedArrayBuffer(plan.files.length * IMAGE_BYTES)); // shared with the loader's worker
  const labels = new Uint8Array(plan.files.length);
  const names: string[] = [];
  results.forEach((r, i) => {
    if ('bad' in r) {
      badFiles.push({ path: plan.files[i].path, reason: r.bad });
      return;
    }
    images.set(r.rgb, n * IMAGE_BYTES);
    labels[n] = plan.files[i].label;
    names.push(plan.files[i].path);
    sizes[r.size] = (sizes[r.size] ?? 0) + 1;
    if (r.size !== `${IMAGE_SIZE}x${IMAGE_SIZE}`) resized++;
    n++;
  });
  if (n === 0) throw new Error(`imagefolder ${plan.dir || '.'}: no image of the split could be decoded (${badFiles.length} bad files)`);
  return { split: { n, images: images.subarray(0, n * IMAGE_BYTES), labels: labels.subarray(0, n), names }, badFiles, sizes, resized };
}
