/**
 * Test helpers for src/data: deterministic RGB patterns, images encoded with sharp, tar archives built with
 * tar-stream, and temporary folders. Not a test file itself (no `.test.` in the name).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import sharp from 'sharp';
import * as tar from 'tar-stream';

/** RGB bytes with edges and gradients; the same formula as fixtures/make_pil_fixture.py */
export function rgbPattern(w: number, h: number, k: number): Uint8Array {
  const o = new Uint8Array(w * h * 3);
  let i = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      o[i++] = (x * 37 + y * 11 + k) % 256;
      o[i++] = (x * x + 3 * y * y + 2 * k) % 256;
      o[i++] = (Math.floor(x / 4) + Math.floor(y / 3)) % 2 ? 255 : (5 * k) % 256;
    }
  }
  return o;
}

/** A smooth image (compresses well, survives JPEG with small error), distinct per k. */
export function smoothPattern(w: number, h: number, k: number): Uint8Array {
  const o = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = 3 * (y * w + x);
      o[p] = (20 + 6 * x + 7 * k) % 256;
      o[p + 1] = (30 + 5 * y + 13 * k) % 256;
      o[p + 2] = (200 - 3 * x - 2 * y + 29 * k) % 256;
    }
  }
  return o;
}

export type Fmt = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff';

/** Encodes RGB (or `channels`-band) bytes with sharp. */
export async function encode(px: Uint8Array, w: number, h: number, fmt: Fmt, channels: 1 | 2 | 3 | 4 = 3): Promise<Uint8Array> {
  let s = sharp(px, { raw: { width: w, height: h, channels } });
  if (fmt === 'jpeg') s = s.jpeg({ quality: 95 });
  if (fmt === 'png') s = s.png();
  if (fmt === 'webp') s = s.webp({ lossless: true });
  if (fmt === 'gif') s = s.gif();
  if (fmt === 'tiff') s = s.tiff({ compression: 'lzw' });
  return new Uint8Array(await s.toBuffer());
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `resnet-ts-${prefix}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Writes files (relative path -> bytes) under root; a value of null makes an empty folder. */
export function writeTree(root: string, files: Record<string, Uint8Array | null>): void {
  for (const [rel, data] of Object.entries(files)) {
    const p = join(root, rel);
    if (data === null) {
      mkdirSync(p, { recursive: true });
    } else {
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, data);
    }
  }
}

/** A tar archive (optionally gzipped) of the given files; null values are folder entries. */
export async function makeTar(files: Record<string, Uint8Array | null>, gzip: boolean): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const [name, data] of Object.entries(files)) {
    if (data === null) pack.entry({ name, type: 'directory' });
    else pack.entry({ name, size: data.length, mtime: new Date(1_700_000_000_000) }, Buffer.from(data));
  }
  pack.finalize();
  await done;
  const t = Buffer.concat(chunks);
  return gzip ? gzipSync(t, { level: 1 }) : t;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

export interface PngSpec {
  width: number;
  height: number;
  /** 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA */
  colorType: 0 | 2 | 3 | 4 | 6;
  bitDepth: 8 | 16;
  /** raw samples, rows concatenated, big-endian for 16 bits (filter bytes are added here) */
  samples: Uint8Array;
  plte?: Uint8Array;
  trns?: Uint8Array;
  /** write the IHDR only, with these dimensions, and a tiny IDAT: a decompression-bomb header */
  bombOnly?: boolean;
}

/** A PNG written by hand, so that odd modes (palette + tRNS, 16-bit, gray + alpha) have exact expectations. */
export function makePng(s: PngSpec): Uint8Array {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(s.width, 0);
  ihdr.writeUInt32BE(s.height, 4);
  ihdr[8] = s.bitDepth;
  ihdr[9] = s.colorType;
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[s.colorType];
  const rowBytes = (s.width * channels * s.bitDepth) / 8;
  let raw: Buffer;
  if (s.bombOnly) {
    raw = Buffer.alloc(64); // far fewer bytes than the header promises
  } else {
    raw = Buffer.alloc(s.height * (rowBytes + 1));
    for (let y = 0; y < s.height; y++) Buffer.from(s.samples.subarray(y * rowBytes, (y + 1) * rowBytes)).copy(raw, y * (rowBytes + 1) + 1);
  }
  const parts = [Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr)];
  if (s.plte) parts.push(chunk('PLTE', s.plte));
  if (s.trns) parts.push(chunk('tRNS', s.trns));
  parts.push(chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0)));
  return new Uint8Array(Buffer.concat(parts));
}

/** An uncompressed BMP (BITMAPINFOHEADER): 24-bit from RGB, or 8-bit with a palette from indices. */
export function makeBmp(opts: { width: number; height: number; rgb?: Uint8Array; indices?: Uint8Array; palette?: Uint8Array; topDown?: boolean }): Uint8Array {
  const { width: w, height: h } = opts;
  const bpp = opts.indices ? 8 : 24;
  const stride = Math.ceil((w * bpp) / 32) * 4;
  const palBytes = opts.indices ? 4 * (opts.palette!.length / 3) : 0;
  const off = 54 + palBytes;
  const b = Buffer.alloc(off + stride * h);
  b.write('BM', 0, 'ascii');
  b.writeUInt32LE(b.length, 2);
  b.writeUInt32LE(off, 10);
  b.writeUInt32LE(40, 14);
  b.writeInt32LE(w, 18);
  b.writeInt32LE(opts.topDown ? -h : h, 22);
  b.writeUInt16LE(1, 26);
  b.writeUInt16LE(bpp, 28);
  if (opts.indices) {
    b.writeUInt32LE(palBytes / 4, 46);
    for (let i = 0; i < palBytes / 4; i++) {
      b[54 + 4 * i] = opts.palette![3 * i + 2];
      b[55 + 4 * i] = opts.palette![3 * i + 1];
      b[56 + 4 * i] = opts.palette![3 * i];
    }
  }
  for (let y = 0; y < h; y++) {
    const row = off + (opts.topDown ? y : h - 1 - y) * stride;
    for (let x = 0; x < w; x++) {
      if (opts.indices) {
        b[row + x] = opts.indices[y * w + x];
      } else {
        const p = 3 * (y * w + x);
        b[row + 3 * x] = opts.rgb![p + 2];
        b[row + 3 * x + 1] = opts.rgb![p + 1];
        b[row + 3 * x + 2] = opts.rgb![p];
      }
    }
  }
  return new Uint8Array(b);
}
