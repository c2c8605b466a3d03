/**
 * Tests of `resnet predict` with the real classifier and real (untrained) weights: every image format the
 * data layer decodes, broken files among good ones, folder walking, text and JSON output, and the seed's
 * interactive loop fed through a pipe to a separate process.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { REPO_ROOT, cliCommand } from '../helpers/cli';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { runPredict, PredictOptions } from '../../src/cli/commands/predict';
import { expandInputs, formatResultText } from '../../src/predict/predict';
import { CIFAR10_CLASSES, CIFAR10_CLASSES_ZH } from '../../src/predict/classes';
import { PROMPT_ZH, unquotePath } from '../../src/predict/interactive';
import { writeSafetensorsFile } from '../../src/interop/safetensors';
import { resnet18 } from '../../src/models/resnet';
import { ImageSet, tempDir, writeImages, writeTestWeights } from './fixtures';

const ROOT = REPO_ROOT;
let dir = '';
let weights = '';
let images: ImageSet;

before(async () => {
  dir = tempDir('predict');
  weights = writeTestWeights(dir);
  images = await writeImages(dir);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

async function predict(paths: string[], opts: Partial<PredictOptions> = {}): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const code = await runPredict(paths, { weights, topk: 3, json: false, lang: 'zh', ...opts }, { stdin: new PassThrough(), stdout, stderr });
  return { code, out, err };
}

describe('resnet predict FILES', () => {
  test('--json: one object per file in the order given; bad files get their error and exit 1', async () => {
    const missing = path.join(dir, 'no-such.png');
    const order = [images.good.bmp, images.bad.empty, images.good.png, images.good.jpeg, images.bad.truncated, images.good.webp,
      images.bad.text, images.good.gif, images.bad.bomb, images.good.tiff, missing];
    const { code, out } = await predict(order, { json: true });
    assert.equal(code, 1);
    const arr = JSON.parse(out) as Record<string, unknown>[];
    assert.deepEqual(arr.map((r) => r.file), order);
    const errors: Record<string, RegExp> = {
      [images.bad.empty]: /empty/,
      [images.bad.truncated]: /truncated/i,
      [images.bad.text]: /not an image/,
      [images.bad.bomb]: /60000x60000.*more than the limit/,
      [missing]: /no such file/,
    };
    for (const r of arr) {
      const want = errors[r.file as string];
      if (want) {
        assert.deepEqual(Object.keys(r), ['file', 'error']);
        assert.match(r.error as string, want);
        continue;
      }
      assert.deepEqual(Object.keys(r), ['file', 'label', 'label_zh', 'index', 'confidence', 'probs', 'logits'], `keys of ${r.file}`);
      const probs = r.probs as number[];
      const index = r.index as number;
      assert.equal(probs.length, 10);
      assert.equal((r.logits as number[]).length, 10);
      assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-12);
      assert.equal(r.confidence, Math.max(...probs));
      assert.equal(probs[index], r.confidence);
      assert.equal(r.label, CIFAR10_CLASSES[index]);
      assert.equal(r.label_zh, CIFAR10_CLASSES_ZH[index]);
    }
  });

  test('text: Chinese class and confidence by default, English with --lang en, the top-k', async () => {
    const zh = await predict([images.good.png], { topk: 3 });
    assert.equal(zh.code, 0);
    assert.equal(zh.err, '');
    const json = JSON.parse((await predict([images.good.png], { json: true })).out)[0];
    const pct = `${(json.confidence * 100).toFixed(2)}%`;
    assert.ok(zh.out.startsWith(`${images.good.png}  ${json.label_zh}  ${pct}  | top-3: ${json.label_zh} ${pct}, `), zh.out);
    assert.equal(zh.out.trim().split('\n').length, 1);
    const en = formatResultText({ file: 'x.png', prediction: { ...json, labelZh: json.label_zh } }, { lang: 'en', topk: 1 });
    assert.equal(en, `x.png  ${json.label}  ${pct}`);
  });

  test('text: errors go to stderr naming the file, results still to stdout', async () => {
    const r = await predict([images.bad.text, images.good.jpeg], { lang: 'en', topk: 1 });
    assert.equal(r.code, 1);
    assert.match(r.err, new RegExp(`resnet predict: ${images.bad.text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not an image`));
    assert.match(r.out, new RegExp(`^${images.good.jpeg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}  (${CIFAR10_CLASSES.join('|')})  \\d+\\.\\d\\d%\\n$`));
  });
});

describe('weights that cannot be loaded', () => {
  const missing = (): string => path.join(dir, 'no-such-weights.ckpt');
  const message = (): string => `--weights ${missing()} does not exist (expected a checkpoint file, a run folder, or RUN/best)`;

  test('--json: one JSON error object on stdout (and the message on stderr), exit 1', async () => {
    const r = await predict([images.good.png], { json: true, weights: missing() });
    assert.equal(r.code, 1);
    assert.deepEqual(JSON.parse(r.out), { weights: missing(), error: message() });
    assert.equal(r.err, `resnet predict: ${message()}\n`);
  });

  test('weights of another width load at their width (the spec is inferred from the shapes)', async () => {
    const narrow = path.join(dir, 'width8.safetensors');
    const m = resnet18({ seed: 1, baseWidth: 8 });
    writeSafetensorsFile(narrow, m.stateDict());
    m.dispose();
    const r = await predict([images.good.png], { json: true, weights: narrow });
    assert.equal(r.code, 0, r.err);
    const out = JSON.parse(r.out) as { probs: number[] } | { probs: number[] }[];
    assert.equal((Array.isArray(out) ? out[0] : out).probs.length, 10, r.out);
  });

  test('weights whose layers disagree on the width: one line with the first 5 mis-shaped keys and a count, no internal names', async () => {
    const mixed = path.join(dir, 'mixed.safetensors');
    const sd = resnet18({ seed: 1 }).stateDict();
    for (const [k, t] of resnet18({ seed: 1, baseWidth: 8 }).stateDict()) if (k.startsWith('layer3.')) sd.set(k, t);
    writeSafetensorsFile(mixed, sd);
    const r = await predict([images.good.png], { json: true, weights: mixed });
    assert.equal(r.code, 1);
    const { error } = JSON.parse(r.out) as { error: string };
    assert.match(error, new RegExp(`^--weights ${mixed} does not fit ResNet-18: mis-shaped keys: layer3\\.0\\.left\\.0\\.weight: expected \\[256,128,3,3\\], ` +
      'received \\[32,16,3,3\\]; layer3\\.0\\.left\\.1\\.weight: expected \\[256\\], received \\[32\\]; (.*?; ){3}and \\d+ more \\(\\d+ in all\\)$'));
    assert.equal(r.err.split('\n').length, 2, r.err);
  });

  test('text: the message on stderr, nothing on stdout, exit 1', async () => {
    const r = await predict([images.good.png], { weights: missing() });
    assert.deepEqual([r.code, r.out, r.err], [1, '', `resnet predict: ${message()}\n`]);
  });
});

describe('folders', () => {
  test('walked recursively in sorted order; hidden files and non-image extensions skipped', async () => {
    const f = path.join(dir, 'folder');
    fs.mkdirSync(path.join(f, 'sub'), { recursive: true });
    for (const n of ['b.png', 'a.JPG', 'sub/c.webp', 'notes.txt', '.hidden.png', 'Z.png']) fs.writeFileSync(path.join(f, n), 'x');
    const entries = await expandInputs([f, images.good.png]);
    assert.deepEqual(entries.map((e) => path.relative(dir, e.file)), [
      'folder/Z.png', 'folder/a.JPG', 'folder/b.png', 'folder/sub/c.webp', path.basename(images.good.png),
    ]);
    const empty = path.join(dir, 'empty-folder');
    fs.mkdirSync(empty);
    const r = await predict([empty]);
    assert.equal(r.code, 1);
    assert.match(r.err, /no image files found/);
  });
});

describe('interactive loop', () => {
  test('unquotes dragged-in paths', () => {
    assert.equal(unquotePath(`  '/a b/c.png' `), '/a b/c.png');
    assert.equal(unquotePath('"x.png"'), 'x.png');
    assert.equal(unquotePath(`it's.png`), `it's.png`);
  });

  test('`resnet predict` with no files reads paths from a pipe until end of input', async () => {
    const child = spawn(process.execPath, [...cliCommand(), 'predict', '--weights', weights, '--lang', 'en', '--topk', '1'], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    child.stdin.end(`${images.good.png}\n\n${path.join(dir, 'missing.png')}\n"${images.good.gif}"\n`);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    const lines = out.trim().split('\n');
    assert.equal(lines.length, 2, `stdout:\n${out}\nstderr:\n${err}`);
    assert.match(lines[0], new RegExp(`^${images.good.png.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}  (${CIFAR10_CLASSES.join('|')})  \\d+\\.\\d\\d%$`));
    assert.ok(lines[1].startsWith(`${images.good.gif}  `), lines[1]);
    // a failed path goes to stderr, as in file mode, not among the results
    assert.ok(err.includes(`resnet predict: ${path.join(dir, 'missing.png')}: read: no such file or directory\n`), err);
    // one prompt per line read, plus the first: the prompt goes to stderr when stdin is not a terminal
    assert.equal(err.split(PROMPT_ZH).length - 1, 5, err);
    assert.equal(code, 1, 'a path that failed makes the exit code 1');
  });
});
