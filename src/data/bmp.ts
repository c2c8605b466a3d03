/**
 * A small decoder for uncompressed Windows BMP files, because sharp's prebuilt libvips has no BMP loader
 * (sharp reports "unsupported image format") and ImageFolder datasets do contain .bmp files.
 *
 * Covers what cameras, scanners and image editors write in practice: BI_RGB with 1, 4, 8 (palette), 16 (5-5-5),
 * 24 and 32 bits per pixel, and BI_BITFIELDS with 16 or 32 bits; bottom-up and top-down rows.
 * Not covered (reported as 'unsupported'): RLE4/RLE8 compression, embedded JPEG/PNG, OS/2 2.x headers.
 * The alpha channel of 32-bit files is ignored, as everywhere in this project (see decode.ts).
 * Reference: Microsoft, "BITMAPINFOHEADER" and "BITMAPV5HEADER" structures (Windows GDI documentation).
 */

export type BmpFailure = 'truncated' | 'unsupported' | 'undecodable';

export class BmpError extends Error {
  constructor(readonly kind: BmpFailure, message: string) {
    super(message);
  }
}

interface BmpHeader {
  width: number;
  height: number;
  topDown: boolean;
  bpp: number;
  compression: number;
  pixelOffset: number;
  dibSize: number;
  masks: [number, number, number];
  palette: Uint8Array; // RGB triplets
}

const BI_RGB = 0;
const BI_BITFIELDS = 3;

function readHeader(dv: DataView): BmpHeader {
  if (dv.byteLength < 26) throw new BmpError('truncated', `truncated BMP (header needs 26 bytes, file has ${dv.byteLength})`);
  const pixelOffset = dv.getUint32(10, true);
  const dibSize = dv.getUint32(14, true);
  if (dibSize === 12) {
    const bpp = dv.getUint16(24, true);
    const h = { width: dv.getUint16(18, true), height: dv.getUint16(20, true), topDown: false, bpp, compression: BI_RGB };
    return { ...h, pixelOffset, dibSize, masks: [0, 0, 0], palette: readPalette(dv, 26, bpp, 0, 3) };
  }
  if (dibSize < 40 || dv.byteLength < 54) throw new BmpError('unsupported', `unsupported BMP header of ${dibSize} bytes`);
  const rawH = dv.getInt32(22, true);
  const bpp = dv.getUint16(28, true);
  const compression = dv.getUint32(30, true);
  let masks: [number, number, number] = bpp === 16 ? [0x7c00, 0x03e0, 0x001f] : [0xff0000, 0x00ff00, 0x0000ff];
  if (compression === BI_BITFIELDS) {
    // the masks follow a 40-byte header, or sit inside the larger V2..V5 headers at the same place
    if (dv.byteLength < 66) throw new BmpError('truncated', 'truncated BMP (bit-field masks missing)');
    masks = [dv.getUint32(54, true), dv.getUint32(58, true), dv.getUint32(62, true)];
  }
  const paletteAt = 14 + dibSize + (compression === BI_BITFIELDS && dibSize === 40 ? 12 : 0);
  const palette = readPalette(dv, paletteAt, bpp, dv.getUint32(46, true), 4);
  return { width: dv.getInt32(18, true), height: Math.abs(rawH), topDown: rawH < 0, bpp, compression, pixelOffset, dibSize, masks, palette };
}

function readPalette(dv: DataView, at: number, bpp: number, used: number, entrySize: number): Uint8Array {
  if (bpp > 8) return new Uint8Array(0);
  const n = used > 0 ? Math.min(used, 1 << bpp) : 1 << bpp;
  if (at + n * entrySize > dv.byteLength) throw new BmpError('truncated', `truncated BMP (palette of ${n} colours cut short)`);
  const pal = new Uint8Array(3 * (1 << bpp));
  for (let i = 0; i < n; i++) {
    pal[3 * i] = dv.getUint8(at + entrySize * i + 2);
    pal[3 * i + 1] = dv.getUint8(at + entrySize * i + 1);
    pal[3 * i + 2] = dv.getUint8(at + entrySize * i);
  }
  return pal;
}

/** Extracts a channel under a bit mask and scales it to 0..255 (a 5-bit field 31 becomes 255). */
function maskedChannel(v: number, mask: number): number {
  if (mask === 0) return 0;
  let shift = 0;
  while (((mask >>> shift) & 1) === 0) shift++;
  const max = mask >>> shift;
  return Math.round((((v & mask) >>> shift) * 255) / max);
}

function decodeRow(dv: DataView, rowAt: number, h: BmpHeader, out: Uint8Array, outAt: number): void {
  const { width, bpp, palette, masks } = h;
  for (let x = 0; x < width; x++) {
    const o = outAt + 3 * x;
    if (bpp <= 8) {
      const bitPos = x * bpp;
      const byte = dv.getUint8(rowAt + (bitPos >> 3));
      const idx = (byte >> (8 - bpp - (bitPos & 7))) & ((1 << bpp) - 1);
      out[o] = palette[3 * idx];
      out[o + 1] = palette[3 * idx + 1];
      out[o + 2] = palette[3 * idx + 2];
    } else if (bpp === 24 || (bpp === 32 && h.compression === BI_RGB)) {
      const p = rowAt + x * (bpp >> 3);
      out[o] = dv.getUint8(p + 2);
      out[o + 1] = dv.getUint8(p + 1);
      out[o + 2] = dv.getUint8(p);
    } else {
      const v = bpp === 16 ? dv.getUint16(rowAt + 2 * x, true) : dv.getUint32(rowAt + 4 * x, true);
      out[o] = maskedChannel(v, masks[0]);
      out[o + 1] = maskedChannel(v, masks[1]);
      out[o + 2] = maskedChannel(v, masks[2]);
    }
  }
}

/** Decodes a BMP file to 8-bit RGB, rows top to bottom (HWC). */
export function decodeBmp(bytes: Uint8Array): { data: Uint8Array; width: number; height: number } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const h = readHeader(dv);
  const okDepth = [1, 4, 8, 16, 24, 32].includes(h.bpp);
  const okComp = h.compression === BI_RGB || (h.compression === BI_BITFIELDS && (h.bpp === 16 || h.bpp === 32));
  if (!okDepth || !okComp) {
    throw new BmpError('unsupported', `unsupported BMP variant (${h.bpp} bits per pixel, compression ${h.compression}; RLE and embedded JPEG/PNG are not decoded)`);
  }
  if (h.width <= 0 || h.height <= 0) throw new BmpError('undecodable', `BMP with invalid size ${h.width}x${h.height}`);
  const stride = Math.ceil((h.width * h.bpp) / 32) * 4;
  const need = h.pixelOffset + stride * h.height;
  if (need > bytes.length) throw new BmpError('truncated', `truncated BMP (pixel data needs ${need} bytes, file has ${bytes.length})`);
  const out = new Uint8Array(h.width * h.height * 3);
  for (let y = 0; y < h.height; y++) {
    const srcRow = h.topDown ? y : h.height - 1 - y;
    decodeRow(dv, h.pixelOffset + srcRow * stride, h, out, y * h.width * 3);
  }
  return { data: out, width: h.width, height: h.height };
}
