/**
 * A JPEG with an EXIF orientation and nothing else (no ICC profile) is not a "plain" JPEG, so the batched
 * decoder, which ignores orientation, never takes it: its pixels come out rotated as decodeImage gives them.
 * sharp's withMetadata({ orientation }) also writes an ICC profile (APP2), which isPlainJpeg refuses on its own,
 * so a test built that way never sees the EXIF check alone; here the APP1 segment is written by hand.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeImage, isPlainJpeg } from '../../src/data/decode';
import { decodeSplit } from '../../src/data/imagefolder';
import { encode, rgbPattern } from './make';

/** An APP1 "Exif" segment holding one IFD0 entry, Orientation (tag 0x0112, SHORT) = `orientation`; little-endian TIFF. */
function exifSegment(orientation: number): Buffer {
  const tiff = Buffer.alloc(8 + 2 + 12 + 4);
  tiff.write('II', 0, 'latin1');
  tiff.writeUInt16LE(42, 2);
  tiff.writeUInt32LE(8, 4); // IFD0 right after the header
  tiff.writeUInt16LE(1, 8); // one entry
  tiff.writeUInt16LE(0x0112, 10);
  tiff.writeUInt16LE(3, 12); // SHORT
  tiff.writeUInt32LE(1, 14); // count
  tiff.writeUInt16LE(orientation, 18); // the value, in the first 2 of its 4 bytes
  tiff.writeUInt32LE(0, 22); // no next IFD
  const body = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  const head = Buffer.from([0xff, 0xe1, 0, 0]);
  head.writeUInt16BE(body.length + 2, 2);
  return Buffer.concat([head, body]);
}

/** The APPn markers (0xe0..0xef) of a JPEG, in order, up to its first SOS. */
function appMarkers(jpeg: Uint8Array): number[] {
  const out: number[] = [];
  for (let at = 2; at + 4 <= jpeg.length && jpeg[at] === 0xff && jpeg[at + 1] !== 0xda; at += 2 + ((jpeg[at + 2] << 8) | jpeg[at + 3])) {
    if (jpeg[at + 1] >= 0xe0 && jpeg[at + 1] <= 0xef) out.push(jpeg[at + 1]);
  }
  return out;
}

async function exifOnlyJpeg(): Promise<{ plain: Uint8Array; rotated: Uint8Array }> {
  const plain = await encode(rgbPattern(32, 32, 3), 32, 32, 'jpeg');
  const rotated = new Uint8Array(Buffer.concat([plain.subarray(0, 2), exifSegment(6), plain.subarray(2)]));
  return { plain, rotated };
}

test('the hand-made fixture: EXIF (APP1) and no ICC (APP2); decodeImage turns it by 90 degrees', async () => {
  const { plain, rotated } = await exifOnlyJpeg();
  assert.ok(appMarkers(rotated).includes(0xe1), `markers ${appMarkers(rotated).map((m) => m.toString(16))}`);
  assert.ok(!appMarkers(rotated).includes(0xe2), 'no ICC profile');
  const a = await decodeImage(plain);
  const b = await decodeImage(rotated);
  assert.notDeepEqual(b.data, a.data, 'orientation 6 changes the pixels');
  // orientation 6: displayed (x, y) = stored (y, 31 - x); the pixel values are the same samples, moved
  for (const [x, y] of [[0, 0], [5, 9], [31, 2]]) {
    const shown = b.data.subarray(3 * (y * 32 + x), 3 * (y * 32 + x) + 3);
    const stored = a.data.subarray(3 * ((31 - x) * 32 + y), 3 * ((31 - x) * 32 + y) + 3);
    assert.deepEqual(shown, stored, `pixel (${x}, ${y})`);
  }
});

test('isPlainJpeg refuses a JPEG whose only extra marker is EXIF; in a split it keeps its rotation', async () => {
  const { plain, rotated } = await exifOnlyJpeg();
  assert.equal(isPlainJpeg(plain, 32, 32), true, 'the same JPEG without the EXIF segment is plain');
  assert.equal(isPlainJpeg(rotated, 32, 32), false, 'EXIF only');
  // three plain JPEGs around it, so that the group decoder runs on that chunk
  const others = await Promise.all([0, 1, 2].map((k) => encode(rgbPattern(32, 32, k), 32, 32, 'jpeg')));
  const bytes = new Map<string, Uint8Array>([['c/0.jpg', others[0]], ['c/1.jpg', others[1]], ['c/r.jpg', rotated], ['c/2.jpg', others[2]]]);
  const files = [...bytes.keys()].map((path) => ({ path, label: 0 }));
  const { split } = await decodeSplit({ dir: '', files, perClass: [4] }, async (p) => bytes.get(p) as Uint8Array, { onBadImage: 'fail', strictSize: false, log: () => undefined });
  assert.equal(split.n, 4);
  assert.deepEqual(split.images.subarray(2 * 3072, 3 * 3072), (await decodeImage(rotated)).data, 'the EXIF-rotated image as decodeImage gives it');
});
