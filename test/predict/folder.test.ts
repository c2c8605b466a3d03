/**
 * Tests of `resnet predict` over folders, the batched path: decode worker threads and one forward pass per
 * batch must keep the order given, report a corrupt file in the middle with its error while its neighbours
 * (in the same batch) are still classified, and give the numbers of one-by-one classification.
 * Real (untrained) weights and small generated images, as in predict.test.ts.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import sharp from 'sharp';
import { REPO_ROOT, cliCommand } from '../helpers/cli';
import { PROGRESS_MIN_FILES, runPredict } from '../../src/cli/commands/predict';
import { loadClassifier, type Classifier } from '../../src/predict/classifier';
import { FileResult, predictFile, predictPaths } from '../../src/predict/predict';
import { pattern, tempDir, writeTestWeights } from './fixtures';
import { decodeBatch, INPUT_VALUES, readInput } from '../../src/predict/read-input';

let dir = '';
let weights = '';
let folder = '';
let classifier: Classifier;
/** the folder's files in the order predict must report them (sorted), and the corrupt one among them */
let files: string[] = [];
let corrupt = '';

/** A JPEG whose Huffman table claims more codes than 16 bits can hold: the header parses, decoding fails. */
function corruptJpeg(jpeg: Buffer): Buffer {
  const c = Buffer.from(jpeg);
  const dht = c.indexOf(Buffer.from([0xff, 0xc4]));
  assert.ok(dht > 0, 'the encoder wrote a DHT segment');
  c.fill(0xff, dht + 5, dht + 21); // the 16 code-length counts
  return c;
}

before(async () => {
  dir = tempDir('predict-folder');
  weights = writeTestWeights(dir);
  folder = path.join(dir, 'photos');
  fs.mkdirSync(path.join(folder, 'sub'), { recursive: true });
  for (let i = 0; i < 11; i++) {
    const w = 32 + 4 * i; // a few sizes, so that resizing runs too
    const img = sharp(pattern(w, 36, i), { raw: { width: w, height: 36, channels: 3 } });
    const name = path.join(folder, i < 8 ? `img-${String(i).padStart(2, '0')}` : `sub/img-${i}`);
    if (i % 3 === 2) await img.png().toFile(`${name}.png`);
    else fs.writeFileSync(`${name}.jpg`, await img.jpeg({ quality: 90 }).toBuffer());
  }
  corrupt = path.join(folder, 'img-04.jpg');
  fs.writeFileSync(corrupt, corruptJpeg(fs.readFileSync(corrupt)));
  files = [
    ...['00.jpg', '01.jpg', '02.png', '03.jpg', '04.jpg', '05.png', '06.jpg', '07.jpg'].map((n) => path.join(folder, `img-${n}`)),
    ...['8.png', '9.jpg', '10.jpg'].map((n) => path.join(folder, 'sub', `img-${n}`)).sort(),
  ];
  classifier = await loadClassifier(weights);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function expectOrderAndCorrupt(results: readonly FileResult[]): void {
  assert.deepEqual(results.map((r) => r.file), files);
  for (const r of results) {
    if (r.file === corrupt) assert.match(r.error ?? '', /^corrupt JPEG \(.*Huffman/, `the corrupt file's error: ${r.error}`);
    else assert.equal(r.error, undefined, `${r.file} is classified`);
  }
}

/** logits of the same image within 1e-5 of its largest logit: per-batch-size kernels sum in different orders */
function expectSameLogits(batched: readonly number[], alone: readonly number[], what: string): void {
  const scale = Math.max(...alone.map(Math.abs));
  const diff = Math.max(...batched.map((v, i) => Math.abs(v - alone[i])));
  assert.ok(diff <= 1e-5 * scale, `${what}: logits differ by ${diff}, more than 1e-5 x ${scale}`);
}

describe('resnet predict over a folder, batched', () => {
  test('decode workers and batches of 4: the order given, the corrupt file in the middle reported, the others classified', async () => {
    const seen: string[] = [];
    let planned = -1;
    const results = await predictPaths(classifier, [folder], (r) => seen.push(r.file), { batchSize: 4, workers: 2, onPlan: (n) => (planned = n) });
    expectOrderAndCorrupt(results);
    assert.deepEqual(seen, files, 'results are streamed in order');
    assert.equal(planned, files.length);
    // decoding on the main thread gives the same results: the workers only move where it runs
    const inline = await predictPaths(classifier, [folder], undefined, { batchSize: 4, workers: 0 });
    assert.deepEqual(inline, results);
  });

  test('batched logits equal one-by-one logits (1e-5 relative); --batch-size 1 equals them bit for bit', async () => {
    const alone = await Promise.all(files.map((f) => predictFile(classifier, f)));
    for (const batchSize of [3, 64]) {
      const batched = await predictPaths(classifier, [folder], undefined, { batchSize, workers: 1 });
      expectOrderAndCorrupt(batched);
      batched.forEach((r, i) => {
        if (r.prediction) expectSameLogits(r.prediction.logits, alone[i].prediction!.logits, `${r.file} at batch size ${batchSize}`);
      });
    }
    const single = await predictPaths(classifier, [folder], undefined, { batchSize: 1, workers: 1 });
    assert.deepEqual(single, alone);
  });

  test('the last, partial batch runs at the full batch size (zeros after its inputs), earlier ones as they are; the answers are its own', async () => {
    const sizes: number[] = [];
    const spy: Classifier = { ...classifier, classifyBatch: (x, n) => { sizes.push(n); return classifier.classifyBatch(x, n); } };
    const results = await predictPaths(spy, [folder], undefined, { batchSize: 4, workers: 0 });
    expectOrderAndCorrupt(results);
    // 11 files in batches of 4: 4 decoded, 3 (the corrupt one is in the second), the last 3 padded to 4
    assert.deepEqual(sizes, [4, 3, 4]);
    const alone = await Promise.all(files.slice(8).map((f) => predictFile(classifier, f)));
    results.slice(8).forEach((r, i) => expectSameLogits(r.prediction!.logits, alone[i].prediction!.logits, `${r.file}, padded`));
    sizes.length = 0;
    await predictPaths(spy, [files[0]], undefined, { batchSize: 4, workers: 0 });
    assert.deepEqual(sizes, [1], 'a single batch is not padded');
  });

  test('runPredict --json keeps its fields over many files, errors included, and exits 1', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => (text += c.toString('utf8')));
    const code = await runPredict([folder], { weights, topk: 3, json: true, lang: 'zh', batchSize: 4 }, { stdin: new PassThrough(), stdout: out, stderr: new PassThrough() });
    assert.equal(code, 1);
    const arr = JSON.parse(text) as Record<string, unknown>[];
    assert.deepEqual(arr.map((r) => r.file), files);
    for (const r of arr) {
      const keys = r.file === corrupt ? ['file', 'error'] : ['file', 'label', 'label_zh', 'index', 'confidence', 'probs', 'logits'];
      assert.deepEqual(Object.keys(r), keys);
    }
  });
});

describe('a batch of plain 32x32 JPEGs (decoded in one call)', () => {
  test('the same inputs as decoding each file alone; a corrupt one among them still named, with its reason', async () => {
    const d = path.join(dir, 'plain32');
    fs.mkdirSync(d, { recursive: true });
    const paths: string[] = [];
    for (let i = 0; i < 6; i++) {
      const jpeg = await sharp(pattern(32, 32, 20 + i), { raw: { width: 32, height: 32, channels: 3 } }).jpeg({ quality: 80 + i }).toBuffer();
      const p = path.join(d, `${i}.jpg`);
      fs.writeFileSync(p, i === 3 ? corruptJpeg(jpeg) : jpeg);
      paths.push(p);
    }
    // all good (one call decodes them all), then with the corrupt one (the group fails: each file alone)
    for (const list of [paths.filter((_, i) => i !== 3), paths]) {
      const batch = await decodeBatch(list);
      const alone = await Promise.all(list.map((p) => readInput(p)));
      assert.deepEqual(batch.errors, alone.map((r) => r.error ?? null));
      const expected = alone.filter((r) => r.x !== undefined).map((r) => [...r.x!]);
      const got = Array.from({ length: expected.length }, (_, k) => [...batch.x.subarray(k * INPUT_VALUES, (k + 1) * INPUT_VALUES)]);
      assert.deepEqual(got, expected, `${list.length} files`);
    }
    assert.match((await decodeBatch(paths)).errors[3] ?? '', /^corrupt JPEG \(.*Huffman/);
  });
});

describe('progress bar', () => {
  /** runPredict over `n` copies of one image, stderr a terminal or not */
  async function predictCopies(n: number, tty: boolean): Promise<{ code: number; out: string; err: string }> {
    const many = path.join(dir, `copies-${n}`);
    fs.mkdirSync(many, { recursive: true });
    for (let i = 0; i < n; i++) fs.copyFileSync(files[0], path.join(many, `${String(i).padStart(4, '0')}.jpg`));
    const stdout = new PassThrough();
    const stderr = Object.assign(new PassThrough(), { isTTY: tty, columns: 120 });
    let out = '';
    let err = '';
    stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    const ci = process.env.CI;
    delete process.env.CI; // the bar stays off under CI; this test is about the terminal
    try {
      const code = await runPredict([many], { weights, topk: 1, json: false, lang: 'en' }, { stdin: new PassThrough(), stdout, stderr });
      return { code, out, err };
    } finally {
      if (ci !== undefined) process.env.CI = ci;
    }
  }

  test(`on a terminal, from ${PROGRESS_MIN_FILES} files: a bar on stderr, every result still on stdout`, async () => {
    const r = await predictCopies(PROGRESS_MIN_FILES, true);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out.trim().split('\n').length, PROGRESS_MIN_FILES);
    assert.match(r.err, new RegExp(`predict \\[=+\\] ${PROGRESS_MIN_FILES}/${PROGRESS_MIN_FILES} images`));
  });

  test('no bar when stderr is not a terminal, or for fewer files', async () => {
    assert.equal((await predictCopies(PROGRESS_MIN_FILES, false)).err, '');
    assert.equal((await predictCopies(PROGRESS_MIN_FILES - 1, true)).err, '');
  });
});

describe('--batch-size', () => {
  test('the API refuses a batch size below 1, naming the option', async () => {
    await assert.rejects(predictPaths(classifier, [folder], undefined, { batchSize: 0 }), /--batch-size to be an integer of at least 1, received 0/);
  });

  test('the CLI refuses 0 and 2.5, naming the option, before loading any weights', async () => {
    for (const bad of ['0', '2.5']) {
      const child = spawn(process.execPath, [...cliCommand(), 'predict', folder, '--weights', path.join(dir, 'none.ckpt'), '--batch-size', bad], { cwd: REPO_ROOT });
      let err = '';
      child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      assert.notEqual(code, 0);
      assert.match(err, new RegExp(`--batch-size <n>' argument '${bad.replace('.', '\\.')}' is invalid\\. expected an integer of at least 1, received "${bad.replace('.', '\\.')}"`), err);
      assert.doesNotMatch(err, /none\.ckpt/, 'commander refuses the value before the weights are read');
    }
  });
});
