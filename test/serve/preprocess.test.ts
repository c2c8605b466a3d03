/**
 * Upload preprocessing off the server's main thread (src/serve/preprocess.ts): the same model input and the
 * same decode errors (code and reason) as preprocessForModel on this thread, computed on another thread, and a
 * thread that ends is replaced, the upload that was in it tried again there.
 */
import { test, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { DEFAULT_MAX_PIXELS, ImageDecodeError, preprocessForModel } from '../../src/data';
import { UploadPreprocessor } from '../../src/serve/preprocess';
import { bombPng, pattern } from '../predict/fixtures';

const pre = new UploadPreprocessor();
after(() => pre.close());

async function image(w: number, h: number, fmt: 'jpeg' | 'png', seed: number): Promise<Buffer> {
  const img = sharp(pattern(w, h, seed), { raw: { width: w, height: h, channels: 3 } });
  return fmt === 'png' ? img.png().toBuffer() : img.jpeg({ quality: 90 }).toBuffer();
}

async function decodeErrorOf(p: Promise<unknown>): Promise<ImageDecodeError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ImageDecodeError, `expected an ImageDecodeError, received ${String(err)}`);
    return err;
  }
  assert.fail('expected the image to be refused');
}

describe('upload preprocessing thread', () => {
  test('the same input as preprocessForModel, bit for bit, computed off the main thread (resize included)', async () => {
    for (const [w, h, fmt] of [[32, 32, 'jpeg'], [300, 200, 'jpeg'], [77, 41, 'png']] as const) {
      const bytes = await image(w, h, fmt, w);
      const r = await pre.preprocess(bytes, DEFAULT_MAX_PIXELS);
      assert.deepEqual(r.x, await preprocessForModel(bytes, { name: 'upload' }), `${w}x${h} ${fmt}`);
      assert.notEqual(r.threadId, 0, 'not the main thread');
    }
  });

  test('decode errors keep their code and reason', async () => {
    const cases: [Uint8Array, number][] = [
      [Buffer.from('just some text, not an image'), DEFAULT_MAX_PIXELS],
      [bombPng(60000, 60000), DEFAULT_MAX_PIXELS],
      [await image(100, 100, 'png', 1), 5000],
    ];
    for (const [bytes, maxPixels] of cases) {
      const here = await decodeErrorOf(preprocessForModel(bytes, { maxPixels, name: 'upload' }));
      const there = await decodeErrorOf(pre.preprocess(bytes, maxPixels));
      assert.deepEqual([there.code, there.reason, there.message], [here.code, here.reason, here.message]);
    }
  });

  test('a thread that ends is replaced: the upload in it is tried again in a new thread', async () => {
    const bytes = await image(400, 300, 'jpeg', 3);
    const first = await pre.preprocess(bytes, DEFAULT_MAX_PIXELS);
    const inFlight = pre.preprocess(bytes, DEFAULT_MAX_PIXELS);
    await pre.endThreadForTest();
    const again = await inFlight;
    assert.deepEqual(again.x, first.x);
    assert.notEqual(again.threadId, first.threadId, 'a new thread');
  });

  test('warm() starts the thread that the first upload then uses', async () => {
    const p = new UploadPreprocessor();
    try {
      const warmed = await p.warm();
      assert.notEqual(warmed, 0, 'not the main thread');
      const first = await p.preprocess(await image(32, 32, 'jpeg', 4), DEFAULT_MAX_PIXELS);
      assert.equal(first.threadId, warmed, 'the warmed thread, not a new one');
    } finally {
      await p.close();
    }
  });

  test('after close, uploads are refused', async () => {
    const p = new UploadPreprocessor();
    await p.preprocess(await image(32, 32, 'png', 2), DEFAULT_MAX_PIXELS);
    await p.close();
    await assert.rejects(p.preprocess(await image(32, 32, 'png', 2), DEFAULT_MAX_PIXELS), /closed/);
  });
});
