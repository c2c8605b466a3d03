/**
 * Image type and size from the first bytes of a file, without decoding: the magic bytes say which format it
 * is, and the format's header says its width and height. Used to refuse decompression bombs before any pixel
 * buffer exists, and to say "not an image" with a reason.
 *
 * Not a decoder and not a validator: a file whose header looks right may still fail to decode.
 * References: PNG (ISO/IEC 15948, IHDR), JPEG (ITU T.81, B.2.2 frame header), GIF89a (logical screen
 * descriptor), WebP container (RFC 9649), BMP (Microsoft BITMAPINFOHEADER), TIFF 6.0 (IFD tags 256/257).
 */

export type ImageType = 'jpeg' | 'png' | 'gif' | 'webp' | 'bmp' | 'tiff';

function ascii(bytes: Uint8Array, at: number, len: number): string {
  return String.fromCharCode(...bytes.subarray(at, at + len));
}

/** The image format named by the file's magic bytes, or null when they match none we decode. */
export function sniffImageType(bytes: Uint8Array): ImageType | null {
  const b = bytes;
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b[0] === 0x89 && ascii(b, 1, 3) === 'PNG' && b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a) {
    return 'png';
  }
  if (b.length >= 6 && (ascii(b, 0, 6) === 'GIF87a' || ascii(b, 0, 6) === 'GIF89a')) return 'gif';
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 4) === 'WEBP') return 'webp';
  if (b.length >= 2 && b[0] === 0x42 && b[1] === 0x4d) return 'bmp';
  if (b.length >= 4 && ((b[0] === 0x49 && b[1] === 0x49 && b[2] === 42 && b[3] === 0) || (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 42))) {
    return 'tiff';
  }
  return null;
}

export interface HeaderSize {
  type: ImageType;
  width: number;
  height: number;
}

/**
 * Width and height as the header declares them, or null when the format is unknown or the header is cut
 * short. For EXIF-rotated images this is the stored (unrotated) size; the pixel count is the same.
 */
export function readImageHeaderSize(bytes: Uint8Array): HeaderSize | null {
  const type = sniffImageType(bytes);
  if (type === null) return null;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let wh: [number, number] | null = null;
  switch (type) {
    case 'png':
      if (bytes.length >= 24 && ascii(bytes, 12, 4) === 'IHDR') wh = [dv.getUint32(16), dv.getUint32(20)];
      break;
    case 'gif':
      if (bytes.length >= 10) wh = [dv.getUint16(6, true), dv.getUint16(8, true)];
      break;
    case 'bmp':
      wh = bmpSize(dv);
      break;
    case 'jpeg':
      wh = jpegSize(bytes);
      break;
    case 'webp':
      wh = webpSize(bytes, dv);
      break;
    case 'tiff':
      wh = tiffSize(dv);
      break;
  }
  return wh === null ? null : { type, width: wh[0], height: wh[1] };
}

function bmpSize(dv: DataView): [number, number] | null {
  if (dv.byteLength < 18) return null;
  const dib = dv.getUint32(14, true);
  if (dib === 12 && dv.byteLength >= 22) return [dv.getUint16(18, true), dv.getUint16(20, true)];
  if (dib >= 40 && dv.byteLength >= 26) return [Math.abs(dv.getInt32(18, true)), Math.abs(dv.getInt32(22, true))];
  return null;
}

export interface JpegFrame {
  width: number;
  height: number;
  /** colour components: 1 gray, 3 YCbCr/RGB, 4 CMYK/YCCK */
  components: number;
  /** bits per sample */
  precision: number;
  /** the APPn markers (0xe0..0xef) met before the frame header: 0xe1 EXIF/XMP, 0xe2 ICC, 0xee Adobe */
  apps: number[];
}

/** Walks the marker segments up to the first start-of-frame (SOF0..SOF15 except DHT, JPG, DAC). */
export function readJpegFrame(b: Uint8Array): JpegFrame | null {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const apps: number[] = [];
  let i = 2;
  while (i + 3 < b.length) {
    if (b[i] !== 0xff) return null;
    const m = b[i + 1];
    if (m === 0xff) {
      i++; // fill byte
      continue;
    }
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd8)) {
      i += 2; // markers without a length
      continue;
    }
    if (m === 0xd9 || m === 0xda) return null; // end of image or scan data before any frame header
    if (m >= 0xe0 && m <= 0xef) apps.push(m);
    const isSof = m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
    if (isSof) {
      if (i + 9 >= b.length) return null;
      return { precision: b[i + 4], height: dv.getUint16(i + 5), width: dv.getUint16(i + 7), components: b[i + 9], apps };
    }
    i += 2 + dv.getUint16(i + 2);
  }
  return null;
}

function jpegSize(b: Uint8Array): [number, number] | null {
  const f = readJpegFrame(b);
  return f === null ? null : [f.width, f.height];
}

function webpSize(b: Uint8Array, dv: DataView): [number, number] | null {
  if (b.length < 30) return null;
  const chunk = ascii(b, 12, 4);
  if (chunk === 'VP8 ') return [dv.getUint16(26, true) & 0x3fff, dv.getUint16(28, true) & 0x3fff];
  if (chunk === 'VP8L') {
    const bits = dv.getUint32(21, true);
    return [(bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1];
  }
  if (chunk === 'VP8X') {
    const w = b[24] | (b[25] << 8) | (b[26] << 16);
    const h = b[27] | (b[28] << 8) | (b[29] << 16);
    return [w + 1, h + 1];
  }
  return null;
}

/** Reads tags 256 (ImageWidth) and 257 (ImageLength) of the first IFD. */
function tiffSize(dv: DataView): [number, number] | null {
  if (dv.byteLength < 8) return null;
  const le = dv.getUint8(0) === 0x49;
  const ifd = dv.getUint32(4, le);
  if (ifd + 2 > dv.byteLength) return null;
  const count = dv.getUint16(ifd, le);
  let w = -1;
  let h = -1;
  for (let k = 0; k < count; k++) {
    const e = ifd + 2 + 12 * k;
    if (e + 12 > dv.byteLength) return null;
    const tag = dv.getUint16(e, le);
    const type = dv.getUint16(e + 2, le);
    const value = type === 3 ? dv.getUint16(e + 8, le) : dv.getUint32(e + 8, le);
    if (tag === 256) w = value;
    if (tag === 257) h = value;
  }
  return w >= 0 && h >= 0 ? [w, h] : null;
}

/** A short printable description of the first bytes, for "not an image" messages. */
export function describeStart(bytes: Uint8Array): string {
  const head = bytes.subarray(0, 12);
  const printable = head.every((c) => (c >= 0x20 && c < 0x7f) || c === 0x0a || c === 0x0d || c === 0x09);
  if (printable) return JSON.stringify(String.fromCharCode(...head));
  return Array.from(head.subarray(0, 8), (c) => c.toString(16).padStart(2, '0')).join(' ');
}

/**
 * Whether the file lacks its format's closing structure (PNG IEND chunk, JPEG EOI marker, GIF trailer,
 * a RIFF size larger than the file): used to call a failed decode "truncated" rather than "undecodable".
 */
export function looksTruncated(type: ImageType, b: Uint8Array): boolean {
  let end = b.length;
  if (type === 'jpeg' || type === 'gif') {
    while (end > 0 && (b[end - 1] === 0x00 || b[end - 1] === 0x0a || b[end - 1] === 0x0d)) end--; // padding some writers add
  }
  switch (type) {
    case 'png':
      return end < 12 || ascii(b, end - 8, 4) !== 'IEND';
    case 'jpeg':
      return end < 2 || b[end - 2] !== 0xff || b[end - 1] !== 0xd9;
    case 'gif':
      return end < 1 || b[end - 1] !== 0x3b;
    case 'webp':
      return b.length < 12 || new DataView(b.buffer, b.byteOffset).getUint32(4, true) + 8 > b.length;
    default:
      return false;
  }
}
