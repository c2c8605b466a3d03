/**
 * Image decoding shared by training data and prediction: bytes in, 8-bit RGB pixels (HWC) out, with typed
 * errors. JPEG, PNG, GIF, WebP and TIFF go through sharp (libvips); BMP through bmp.ts.
 *
 * Semantics (what a user's odd image becomes):
 * - EXIF orientation is applied, so a rotated phone photo gives the same pixels as the pre-rotated image.
 * - Alpha is dropped without compositing, as PIL's `convert('RGB')` does: the stored colour under a
 *   transparent pixel is kept.
 * - Grayscale is replicated to three channels; palette images are expanded; CMYK goes through libvips's
 *   colour management (the embedded ICC profile, else a generic CMYK profile), not PIL's naive formula.
 * - 16-bit images are scaled to 8 bits (65535 -> 255, v/257 rounded), not clipped as PIL does.
 * - Animated GIF/WebP/PNG: the first frame.
 * - Decompression bombs: the header's width x height is checked against `maxPixels` before any pixel buffer
 *   exists; sharp's `limitInputPixels` is set to the same value as a second guard.
 *
 * - Resizing (prediction inputs, dataset images that are not 32x32) is Pillow's BICUBIC, bit for bit (resize.ts).
 *
 * Not here: datasets (imagefolder.ts), augmentation (augment.ts).
 * References: sharp constructor options (limitInputPixels, failOn, autoOrient, join), Pillow Image.convert,
 * Image.resize and MAX_IMAGE_PIXELS.
 */
import sharp from 'sharp';
import { BmpError, decodeBmp } from './bmp';
import { describeStart, ImageType, looksTruncated, readImageHeaderSize, readJpegFrame, sniffImageType } from './header';
import { nativeJpegDecoder } from './jpeg-native';
import { IMAGE_BYTES, IMAGE_SIZE, normalizeInto } from './normalize';
import { resizeBicubicPil } from './resize';

export { sniffImageType, readImageHeaderSize } from './header';
export type { ImageType, HeaderSize } from './header';

/**
 * Default pixel limit: Pillow's MAX_IMAGE_PIXELS (89,478,485, about 256 MiB of RGB). A 48-megapixel photo
 * (8000x6000) passes; a PNG claiming 60000x60000 does not. Lower than sharp's own default (268 MP) because a
 * CIFAR classifier never needs more, and a server should not allocate a gigabyte for one request.
 */
export const DEFAULT_MAX_PIXELS = 89_478_485;

export type ImageErrorCode =
  | 'empty' // 0 bytes
  | 'not-an-image' // magic bytes match no image format
  | 'truncated' // the file ends before its image data does
  | 'too-many-pixels' // header declares more than maxPixels
  | 'unsupported' // an image format or variant we do not decode
  | 'undecodable' // corrupt data in a recognised format
  | 'unreadable' // the file could not be read (permissions, vanished)
  | 'wrong-size'; // not 32x32 where that was required

export class ImageDecodeError extends Error {
  override readonly name = 'ImageDecodeError';
  /** message = `image <file>: <reason>` */
  constructor(
    readonly code: ImageErrorCode,
    readonly file: string,
    readonly reason: string,
  ) {
    super(`image ${file}: ${reason}`);
  }
}

export interface DecodeOptions {
  /** refuse images whose header declares more pixels than this (default DEFAULT_MAX_PIXELS) */
  maxPixels?: number;
  /** the file name used in error messages (default "input") */
  name?: string;
}

export interface DecodedImage {
  /** H*W*3 bytes, RGB, row-major (HWC) */
  data: Uint8Array;
  width: number;
  height: number;
  /** the detected format: jpeg, png, gif, webp, bmp or tiff */
  format: string;
}

const FORMAT_NAME: Record<ImageType, string> = { jpeg: 'JPEG', png: 'PNG', gif: 'GIF', webp: 'WebP', bmp: 'BMP', tiff: 'TIFF' };

function checkHeader(bytes: Uint8Array, name: string, maxPixels: number): ImageType {
  if (bytes.length === 0) throw new ImageDecodeError('empty', name, 'empty file (0 bytes)');
  const type = sniffImageType(bytes);
  if (type === null) {
    const start = describeStart(bytes);
    throw new ImageDecodeError('not-an-image', name, `not an image: starts with ${start}, expected the magic bytes of JPEG, PNG, GIF, WebP, BMP or TIFF`);
  }
  const size = readImageHeaderSize(bytes);
  if (size !== null && size.width * size.height > maxPixels) {
    const n = size.width * size.height;
    throw new ImageDecodeError('too-many-pixels', name, `${FORMAT_NAME[type]} header declares ${size.width}x${size.height} = ${n} pixels, more than the limit of ${maxPixels} (refused before decoding)`);
  }
  return type;
}

/** sharp's message ends at its colon when libvips's own reason was lost (see decodeImage). */
function lacksReason(err: unknown): boolean {
  const msg = (err instanceof Error ? err.message : String(err)).split('\n')[0];
  return /:\s*$/.test(msg);
}

/** Turns a sharp/libvips failure into a typed error; the first line of libvips's message is kept. */
function sharpFailure(err: unknown, type: ImageType, bytes: Uint8Array, name: string, maxPixels: number): ImageDecodeError {
  const msg = (err instanceof Error ? err.message : String(err)).split('\n')[0];
  const fmt = FORMAT_NAME[type];
  if (/exceeds pixel limit/i.test(msg)) return new ImageDecodeError('too-many-pixels', name, `${fmt} larger than the limit of ${maxPixels} pixels`);
  if (/unsupported image format/i.test(msg)) return new ImageDecodeError('unsupported', name, `${fmt} variant not supported by the decoder (${msg})`);
  if (looksTruncated(type, bytes) || /premature end|truncat|unexpected end|not enough data/i.test(msg)) {
    return new ImageDecodeError('truncated', name, `truncated ${fmt} (${bytes.length} bytes; ${msg})`);
  }
  return new ImageDecodeError('undecodable', name, `corrupt ${fmt} (${msg})`);
}

/**
 * Decodes an image file's bytes to 8-bit RGB (HWC). Throws ImageDecodeError with a code saying why it
 * could not; never returns a partial image.
 */
export async function decodeImage(bytes: Uint8Array, opts: DecodeOptions = {}): Promise<DecodedImage> {
  const name = opts.name ?? 'input';
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const type = checkHeader(bytes, name, maxPixels);
  if (type === 'bmp') {
    try {
      return { ...decodeBmp(bytes), format: 'bmp' };
    } catch (err) {
      if (err instanceof BmpError) throw new ImageDecodeError(err.kind, name, err.message);
      throw err;
    }
  }
  const run = () =>
    sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error', autoOrient: true })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  let out: { data: Buffer; info: sharp.OutputInfo } | undefined;
  try {
    out = await run();
  } catch (err) {
    let failure = err;
    // libvips keeps its error text in one buffer for the whole process: when another thread's decode
    // (a decode worker, a concurrent request) clears it at the wrong moment, sharp's message arrives
    // with its reason cut off ("Input buffer has corrupt header:"). Decoding again, only on such a
    // failure and up to five times, recovers the reason the user needs (test/data/decode.test.ts).
    for (let retry = 0; retry < 5 && lacksReason(failure); retry++) {
      try {
        out = await run();
        break;
      } catch (again) {
        failure = again;
      }
    }
    if (out === undefined) throw sharpFailure(failure, type, bytes, name, maxPixels);
  }
  const { data, info } = out;
  if (info.channels !== 3) {
    throw new ImageDecodeError('unsupported', name, `${FORMAT_NAME[type]} decoded to ${info.channels} channels, expected 3 (RGB)`);
  }
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, format: type };
}

/**
 * Whether a JPEG can join a group decode (decodeJpegGroup) with the same result as decodeImage: 8-bit,
 * 3 components, the given size, ending with its EOI marker, and without the markers that would make its
 * pixels depend on per-image handling (APP1 EXIF orientation, APP2 ICC profile, APP14 Adobe colour transform).
 */
export function isPlainJpeg(bytes: Uint8Array, width: number, height: number): boolean {
  if (sniffImageType(bytes) !== 'jpeg' || looksTruncated('jpeg', bytes)) return false;
  const f = readJpegFrame(bytes);
  if (f === null || f.width !== width || f.height !== height || f.precision !== 8 || f.components !== 3) return false;
  return !f.apps.some((m) => m === 0xe1 || m === 0xe2 || m === 0xee);
}

/**
 * Decodes plain JPEGs of one size (see isPlainJpeg), returning their RGB pixels one after another: the same bytes
 * as decodeImage on each. With the JPEG addon (jpeg-native.ts), libjpeg-turbo decodes them in one call, about ten
 * times cheaper per 32x32 image; without it, a single libvips pipeline (sharp's `join`, stacked vertically), about
 * half the cost of one sharp call per image, whose fixed cost (~0.5 ms) dominates at 32x32.
 * Throws if any of them fails; the caller then decodes them one by one to name the bad one.
 */
export async function decodeJpegGroup(list: Uint8Array[], width: number, height: number): Promise<Uint8Array> {
  // libjpeg-turbo directly (jpeg-native.ts), when built: the same pixels without sharp's cost per image; any image
  // it refuses sends the whole group to sharp, which names the bad one
  const native = nativeJpegDecoder()?.decode(list, width, height);
  if (native && native.ok.every((f) => f === 1)) return native.rgb;
  const { data, info } = await sharp(list, { join: { across: 1 }, failOn: 'error', limitInputPixels: width * height })
    .toColourspace('srgb')
    .removeAlpha()
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.width !== width || info.height !== height * list.length || info.channels !== 3) {
    throw new Error(`decodeJpegGroup: expected ${width}x${height * list.length}x3, received ${info.width}x${info.height}x${info.channels}`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

/**
 * The plain 32x32 JPEGs among `bytes` (see isPlainJpeg; null: a file that could not be read), decoded together by
 * decodeJpegGroup: per index, that image's RGB pixels, or undefined for the others, and for all of them when the
 * group fails (one is bad), so that the caller decodes those one by one and names the bad one.
 */
export async function decodePlainJpegs(bytes: readonly (Uint8Array | null | undefined)[]): Promise<(Uint8Array | undefined)[]> {
  const out = new Array<Uint8Array | undefined>(bytes.length);
  const plain = bytes.flatMap((b, k) => (b && isPlainJpeg(b, IMAGE_SIZE, IMAGE_SIZE) ? [k] : []));
  if (plain.length < 2) return out;
  try {
    const rgb = await decodeJpegGroup(plain.map((k) => bytes[k]!), IMAGE_SIZE, IMAGE_SIZE);
    plain.forEach((k, j) => (out[k] = rgb.subarray(j * IMAGE_BYTES, (j + 1) * IMAGE_BYTES)));
  } catch {
    // one of them is bad: each is decoded alone by the caller
  }
  return out;
}

/**
 * Resizes RGB (HWC) pixels to width x height as PIL's `resize((width, height))` does for an RGB image
 * (BICUBIC, antialiased, aspect ratio not kept), bit for bit: see resize.ts. Returns the input itself when
 * the size already matches.
 */
export function resizeRgb(img: { data: Uint8Array; width: number; height: number }, width: number, height: number): Uint8Array {
  if (img.width === width && img.height === height) return img.data;
  return resizeBicubicPil(img.data, img.width, img.height, width, height);
}

/**
 * The model's input for one image file: decode -> RGB -> resize to 32x32 (PIL's bicubic, see resizeRgb) ->
 * ToTensor + Normalize with the seed's statistics. Returns [1,3,32,32] float32 (NCHW).
 */
export async function preprocessForModel(bytes: Uint8Array, opts: DecodeOptions = {}): Promise<Float32Array> {
  const img = await decodeImage(bytes, opts);
  const rgb = resizeRgb(img, IMAGE_SIZE, IMAGE_SIZE);
  const out = new Float32Array(3 * IMAGE_SIZE * IMAGE_SIZE);
  normalizeInto(out, 0, rgb, 0, IMAGE_SIZE * IMAGE_SIZE);
  return out;
}
