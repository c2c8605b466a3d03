/**
 * What `POST /api/predict` checks of an upload before it is decoded (non-empty, an image by its magic bytes, the
 * pixel count its header declares), and the HTTP errors of those checks and of the decoder, each with the status
 * a client can act on (400, 415, 422) and a message that says what to send instead.
 * What it is not: the decoder (src/data) or the route (server.ts).
 */
import type * as http from 'node:http';
import { ImageDecodeError, readImageHeaderSize, sniffImageType } from '../data';
import { HttpError } from './http';

const RAW_BYTES_HINT = 'send the raw bytes of the image file as the request body, e.g. curl --data-binary @cat.jpg http://127.0.0.1:8080/api/predict';

/** The 415 of a body that is not an image, saying what to send instead (a form upload is the usual mistake). */
export function notAnImage(req: http.IncomingMessage, bytes: Buffer): HttpError {
  const type = String(req.headers['content-type'] ?? '').toLowerCase();
  // a multipart body opens with "--" and its boundary, whether or not the Content-Type was sent
  const multipart = type.startsWith('multipart/') || bytes.subarray(0, 2).toString('latin1') === '--';
  const received = multipart ? 'a multipart/form-data (form) upload' : 'something else';
  return new HttpError(415, 'not-an-image', `request body: expected a JPEG, PNG, GIF, WebP, BMP or TIFF file (by its magic bytes), received ${received}; ${RAW_BYTES_HINT}`);
}

/** Maps a decoder failure to the status a client can act on. */
export function decodeErrorToHttp(err: ImageDecodeError): HttpError {
  const status: Record<string, number> = {
    'too-many-pixels': 422,
    'not-an-image': 415,
    unsupported: 415,
    empty: 400,
    truncated: 400,
    undecodable: 400,
  };
  return new HttpError(status[err.code] ?? 400, err.code, `image: ${err.reason}`);
}

/** Checks what can be checked without decoding: non-empty, an image by its magic bytes, pixel count. */
export function checkUpload(maxPixels: number, req: http.IncomingMessage, bytes: Buffer): { format: string; width?: number; height?: number } {
  if (bytes.length === 0) throw new HttpError(400, 'empty', 'request body: expected the bytes of an image file, received 0 bytes');
  const format = sniffImageType(bytes);
  if (format === null) throw notAnImage(req, bytes);
  const size = readImageHeaderSize(bytes);
  if (size !== null && size.width * size.height > maxPixels) {
    throw new HttpError(
      422,
      'too-many-pixels',
      `image: the ${format} header declares ${size.width}x${size.height} = ${size.width * size.height} pixels, more than the limit of ${maxPixels} (not decoded)`,
    );
  }
  return { format, width: size?.width, height: size?.height };
}
