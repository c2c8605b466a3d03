/**
 * The JPEG addon (native/jpeg.cc, build/Release/resnet_jpeg.node): libjpeg-turbo decoding of many small plain JPEGs
 * of one size in one call, for decodeJpegGroup. Optional: where it was not built (no libjpeg-dev at install time)
 * or RESNET_JPEG=sharp is set, `nativeJpegDecoder()` is null and sharp decodes every JPEG, with the same pixels.
 *
 * What it is not: a decoder of arbitrary JPEGs. The addon refuses (flag 0) anything it cannot decode cleanly, and
 * the caller hands those to sharp, whose messages say what is wrong.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

interface JpegAddon {
  decodeJpegs(list: Uint8Array[], width: number, height: number, out: Uint8Array): Uint8Array;
  libjpegVersion: number;
}

export interface NativeJpegDecoder {
  /** RGB pixels of every image, one after another, and per image 1 (decoded) or 0 (refused: decode it with sharp) */
  decode(list: Uint8Array[], width: number, height: number): { rgb: Uint8Array; ok: Uint8Array };
  /** libjpeg's API version the addon was built against (62 for libjpeg-turbo's default) */
  readonly libjpegVersion: number;
}

let loaded: NativeJpegDecoder | null | undefined;

/** build/Release/resnet_jpeg.node under the package root, seen from src/data or dist/src/data. */
function addonPath(): string | null {
  const rel = path.join('build', 'Release', 'resnet_jpeg.node');
  return [path.resolve(__dirname, '..', '..', rel), path.resolve(__dirname, '..', '..', '..', rel)].find((p) => fs.existsSync(p)) ?? null;
}

/** The addon's decoder, or null where it is not built or RESNET_JPEG=sharp; loaded once per thread. */
export function nativeJpegDecoder(): NativeJpegDecoder | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (process.env.RESNET_JPEG === 'sharp') return loaded;
  const file = addonPath();
  if (file === null) return loaded;
  try {
    const addon = require(file) as JpegAddon;
    loaded = {
      libjpegVersion: addon.libjpegVersion,
      decode(list, width, height) {
        const rgb = new Uint8Array(list.length * width * height * 3);
        return { rgb, ok: addon.decodeJpegs(list, width, height, rgb) };
      },
    };
  } catch {
    loaded = null; // a stale or foreign build: sharp does the work
  }
  return loaded;
}
