/**
 * `resnet predict --tta MODE` as a child process: each file's probabilities are the mean over views made by hand
 * (test/predict/tta-views.ts) of the plain classifier's softmax, its logits the untouched image's; an unknown mode
 * is refused with the choices.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { REPO_ROOT, cliCommand } from '../helpers/cli';
import { preprocessForModel } from '../../src/data';
import { loadClassifier } from '../../src/predict/classifier';
import { maxAbsDiff } from '../helpers/close';
import { ImageSet, tempDir, writeImages, writeTestWeights } from './fixtures';
import { meanRows, viewsOf } from './tta-views';

let dir = '';
let weights = '';
let images: ImageSet;

before(async () => {
  dir = tempDir('predict-tta');
  weights = writeTestWeights(dir);
  images = await writeImages(dir);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [...cliCommand(), ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out, err })));
}

test('--tta flip-shift --json: each file\'s probabilities are the mean of its six views\'', async () => {
  const files = [images.good.png, images.good.jpeg, images.good.tiff];
  const r = await cli(['predict', ...files, '--weights', weights, '--tta', 'flip-shift', '--json']);
  assert.equal(r.code, 0, r.err);
  const got = JSON.parse(r.out) as { file: string; probs: number[]; logits: number[]; index: number }[];
  assert.deepEqual(got.map((g) => g.file), files);
  const plain = await loadClassifier(weights);
  for (const [i, file] of files.entries()) {
    const x = await preprocessForModel(fs.readFileSync(file));
    const want = meanRows(viewsOf(x, 'flip-shift').map((v) => plain.classifyInput(v).probs));
    // the command runs the three files as one batch, the expectation one image at a time: float32 rounding apart
    assert.ok(maxAbsDiff(got[i].probs, want) <= 1e-5, `${file}: ${maxAbsDiff(got[i].probs, want)}`);
    assert.ok(maxAbsDiff(got[i].logits, plain.classifyInput(x).logits) <= 1e-4);
    assert.equal(got[i].index, got[i].probs.indexOf(Math.max(...got[i].probs)));
    assert.ok(maxAbsDiff(got[i].probs, plain.classifyInput(x).probs) > 1e-4, `${file}: TTA made no difference`);
  }
});

test('--tta with an unknown mode: refused with the choices, exit 1', async () => {
  const r = await cli(['predict', images.good.png, '--weights', weights, '--tta', 'rotate']);
  assert.equal(r.code, 1);
  assert.match(r.err, /--tta <mode>' argument 'rotate' is invalid\. Allowed choices are off, flip, flip-shift/);
});
