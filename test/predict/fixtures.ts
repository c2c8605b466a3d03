/**
 * Test fixtures for prediction and serving: real weights (a freshly initialised ResNet-18, saved as
 * safetensors: a legitimate, untrained model) and images generated in every format src/data decodes, plus
 * broken files (empty, truncated, not an image, a decompression-bomb header).
 *
 * What it is not: a fake classifier. Tests load these weights through loadClassifier like a user would.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import sharp from 'sharp';
import { resnet18 } from '../../src/models/resnet';
import { writeSafetensorsFile } from '../../src/interop/safetensors';

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `resnet-${prefix}-`));
}

/** Writes an untrained ResNet-18's state dict (seeded, so every run writes the same values). */
export function writeTestWeights(dir: string, seed = 7): string {
  const file = path.join(dir, 'untrained.safetensors');
  writeSafetensorsFile(file, resnet18({ seed }).stateDict());
  return file;
}

/** A w x h RGB picture with gradients and a block, different for each `variant`. */
export function pattern(w: number, h: number, variant = 0): Buffer {
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = 3 * (y * w + x);
      const inBlock = x > w / 3 && x < (2 * w) / 3 && y > h / 4 && y < (3 * h) / 4;
      px[i] = (x * 255) / w + variant * 40;
      px[i + 1] = inBlock ? 230 - variant * 30 : (y * 255) / h;
      px[i + 2] = ((x + y + variant * 17) * 7) % 256;
    }
  }
  return px;
}

/** A 24-bit uncompressed BMP (bottom-up rows, BGR, rows padded to 4 bytes), written by hand: sharp cannot. */
export function encodeBmp(rgb: Buffer, w: number, h: number): Buffer {
  const rowBytes = Math.ceil((w * 3) / 4) * 4;
  const size = 54 + rowBytes * h;
  const b = Buffer.alloc(size);
  b.write('BM', 0, 'ascii');
  b.writeUInt32LE(size, 2);
  b.writeUInt32LE(54, 10);
  b.writeUInt32LE(40, 14);
  b.writeInt32LE(w, 18);
  b.writeInt32LE(h, 22);
  b.writeUInt16LE(1, 26);
  b.writeUInt16LE(24, 28);
  b.writeUInt32LE(rowBytes * h, 34);
  for (let y = 0; y < h; y++) {
    const row = 54 + (h - 1 - y) * rowBytes;
    for (let x = 0; x < w; x++) {
      const s = 3 * (y * w + x);
      b[row + 3 * x] = rgb[s + 2];
      b[row + 3 * x + 1] = rgb[s + 1];
      b[row + 3 * x + 2] = rgb[s];
    }
  }
  return b;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(td) >>> 0);
  return Buffer.concat([len, td, crc]);
}

/** A small PNG whose (valid, CRC-checked) header declares w x h pixels: a decompression bomb's calling card. */
export function bombPng(w: number, h: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const idat = zlib.deflateSync(Buffer.alloc(1024));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk('IHDR', ihdr), pngChunk('IDAT', idat), pngChunk('IEND', Buffer.alloc(0))]);
}

export interface ImageSet {
  /** decodable images, by format name */
  good: Record<'png' | 'jpeg' | 'webp' | 'gif' | 'tiff' | 'bmp', string>;
  /** files that must fail, by what is wrong with them */
  bad: Record<'empty' | 'truncated' | 'text' | 'bomb', string>;
}

export async function writeImages(dir: string): Promise<ImageSet> {
  const w = 48;
  const h = 40;
  const raw = (v: number): sharp.Sharp => sharp(pattern(w, h, v), { raw: { width: w, height: h, channels: 3 } });
  const file = (name: string): string => path.join(dir, name);
  const good = {
    png: file('a-pattern.png'),
    jpeg: file('b-pattern.jpg'),
    webp: file('c-pattern.webp'),
    gif: file('d-pattern.gif'),
    tiff: file('e-pattern.tiff'),
    bmp: file('f-pattern.bmp'),
  };
  await raw(0).png().toFile(good.png);
  const jpeg = await raw(1).jpeg({ quality: 90 }).toBuffer();
  fs.writeFileSync(good.jpeg, jpeg);
  await raw(2).webp({ quality: 90 }).toFile(good.webp);
  await raw(3).gif().toFile(good.gif);
  await raw(4).tiff().toFile(good.tiff);
  fs.writeFileSync(good.bmp, encodeBmp(pattern(w, h, 5), w, h));
  const bad = {
    empty: file('g-empty.png'),
    truncated: file('h-truncated.jpg'),
    text: file('i-notes.jpg'),
    bomb: file('j-bomb.png'),
  };
  fs.writeFileSync(bad.empty, Buffer.alloc(0));
  fs.writeFileSync(bad.truncated, jpeg.subarray(0, Math.floor(jpeg.length / 2)));
  fs.writeFileSync(bad.text, 'these are notes, not a picture\n');
  fs.writeFileSync(bad.bomb, bombPng(60000, 60000));
  return { good, bad };
}
