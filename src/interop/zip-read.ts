/**
 * Reads the entries of a zip archive held in memory, checking the sizes its central directory declares
 * before anything is inflated, and inflating with a bound, so that a zip bomb (a small file that inflates
 * to gigabytes) is refused at the cost of reading its directory, not of its inflated size.
 *
 * Why not fflate's unzipSync: it allocates each entry's declared size and inflates every entry before the
 * caller can refuse any, and an entry that inflates to more than it declares is silently cut, not refused.
 * fflate still does the inflating (its streaming Inflate, fed in slices so the output is checked as it grows).
 * What it is not: a general zip reader: no encryption, no multi-disk archives, only stored and deflated entries.
 * Reference: PKWARE APPNOTE.TXT 6.3 (4.3.12 central directory header, 4.3.14-4.3.16 zip64, 4.5.3 zip64 extra).
 */
import { Inflate } from 'fflate';

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated */
  method: number;
  compressedSize: number;
  /** as declared by the central directory; inflating to more (or less) is an error */
  size: number;
  /** where the entry's local header starts */
  localOffset: number;
}

export interface ZipLimits {
  /** the most the declared sizes of all entries may add up to */
  maxTotalBytes: number;
  /** an entry declaring more than `ratioFloorBytes` may declare at most this many times its compressed size */
  maxRatio: number;
  ratioFloorBytes: number;
}

const MiB = 1024 * 1024;

/**
 * Limits tied to the file's own size: 64 times the file (a stored torch.save archive declares about its own
 * size), at least 128 MiB (ResNet-18 in float64 is 89 MB, however well its zeros compress) and at most 2 GiB.
 */
export function defaultZipLimits(fileBytes: number): ZipLimits {
  return { maxTotalBytes: Math.min(2048 * MiB, Math.max(128 * MiB, 64 * fileBytes)), maxRatio: 256, ratioFloorBytes: 4 * MiB };
}

const mb = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;

function findEndOfDirectory(view: DataView): number {
  for (let e = view.byteLength - 22; e >= 0 && view.byteLength - e <= 65557; e--) {
    if (view.getUint32(e, true) === 0x06054b50) return e;
  }
  throw new Error('zip: expected an end-of-central-directory record in the last 64 KiB, found none (truncated or not a zip?)');
}

/** The zip64 extra field's values for the 32-bit fields that hold 0xFFFFFFFF, in APPNOTE's order. */
function zip64Values(view: DataView, at: number, end: number, wanted: number): number[] {
  for (let p = at; p + 4 <= end; ) {
    const id = view.getUint16(p, true);
    const len = view.getUint16(p + 2, true);
    if (id === 0x0001) {
      return Array.from({ length: Math.min(wanted, len / 8) }, (_, i) => Number(view.getBigUint64(p + 4 + 8 * i, true)));
    }
    p += 4 + len;
  }
  return [];
}

/** The central directory's entries, checked to lie inside the file. */
export function listZip(bytes: Uint8Array): ZipEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const e = findEndOfDirectory(view);
  let count = view.getUint16(e + 10, true);
  let at = view.getUint32(e + 16, true);
  if (e >= 20 && view.getUint32(e - 20, true) === 0x07064b50) {
    const z = Number(view.getBigUint64(e - 12, true));
    if (z + 56 > bytes.length || view.getUint32(z, true) !== 0x06064b50) throw new Error('zip: the zip64 end-of-directory locator points outside the file');
    count = Number(view.getBigUint64(z + 32, true));
    at = Number(view.getBigUint64(z + 48, true));
  }
  const entries: ZipEntry[] = [];
  for (let i = 0; i < count; i++) {
    if (at + 46 > bytes.length || view.getUint32(at, true) !== 0x02014b50) {
      throw new Error(`zip: central directory entry ${i} of ${count}: expected its header at byte ${at}, found none (corrupt file?)`);
    }
    const nameLen = view.getUint16(at + 28, true);
    const extraLen = view.getUint16(at + 30, true);
    const fields = [view.getUint32(at + 24, true), view.getUint32(at + 20, true), view.getUint32(at + 42, true)];
    const big = zip64Values(view, at + 46 + nameLen, at + 46 + nameLen + extraLen, fields.length);
    const [size, compressedSize, localOffset] = fields.map((v) => (v === 0xffffffff ? big.shift() ?? v : v));
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLen));
    entries.push({ name, method: view.getUint16(at + 10, true), compressedSize, size, localOffset });
    at += 46 + nameLen + extraLen + view.getUint16(at + 32, true);
  }
  return entries;
}

/** Refuses, naming the sizes, an archive whose declared sizes pass `limits`: nothing has been inflated yet. */
export function checkZipSizes(entries: readonly ZipEntry[], fileBytes: number, limits: ZipLimits): void {
  const total = entries.reduce((acc, en) => acc + en.size, 0);
  if (total > limits.maxTotalBytes) {
    throw new Error(`zip: the entries declare ${mb(total)} uncompressed in a file of ${mb(fileBytes)}, more than the limit of ` +
      `${mb(limits.maxTotalBytes)} (a zip bomb? nothing was inflated)`);
  }
  for (const en of entries) {
    if (en.size > limits.ratioFloorBytes && en.size > limits.maxRatio * en.compressedSize) {
      throw new Error(`zip: entry '${en.name}' declares ${mb(en.size)} from ${en.compressedSize} compressed bytes, ` +
        `more than ${limits.maxRatio} times (a zip bomb? nothing was inflated)`);
    }
  }
}

/** The entry's bytes: a view for a stored entry, inflated for a deflated one, never more than it declares. */
export function readZipEntry(bytes: Uint8Array, en: ZipEntry): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = en.localOffset;
  if (at + 30 > bytes.length || view.getUint32(at, true) !== 0x04034b50) throw new Error(`zip: entry '${en.name}': no local header at byte ${at}`);
  const start = at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
  if (start + en.compressedSize > bytes.length) throw new Error(`zip: entry '${en.name}': its ${en.compressedSize} bytes run past the end of the file (truncated?)`);
  const data = bytes.subarray(start, start + en.compressedSize);
  if (en.method === 0) {
    if (en.size !== en.compressedSize) throw new Error(`zip: stored entry '${en.name}' declares ${en.size} bytes but holds ${en.compressedSize}`);
    return data;
  }
  if (en.method !== 8) throw new Error(`zip: entry '${en.name}': compression method ${en.method}, expected 0 (stored) or 8 (deflate)`);
  return inflateBounded(data, en);
}

function inflateBounded(data: Uint8Array, en: ZipEntry): Uint8Array {
  const out = new Uint8Array(en.size);
  let written = 0;
  let ended = false;
  const inflater = new Inflate((chunk, final) => {
    if (written + chunk.length > en.size) {
      throw new Error(`zip: entry '${en.name}' inflates to more than the ${en.size} bytes it declares (a zip bomb? stopped there)`);
    }
    out.set(chunk, written);
    written += chunk.length;
    ended ||= final;
  });
  // fed in slices: deflate expands at most about 1032 times, so one slice's output stays under 17 MiB
  const SLICE = 16 * 1024;
  for (let p = 0; p < data.length || p === 0; p += SLICE) inflater.push(data.subarray(p, p + SLICE), p + SLICE >= data.length);
  if (!ended || written !== en.size) throw new Error(`zip: entry '${en.name}' inflates to ${written} bytes, it declares ${en.size} (corrupt file?)`);
  return out;
}
