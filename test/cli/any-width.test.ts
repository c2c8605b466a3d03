/**
 * A run trained with `--width 16` (and 3 classes: the tiny generated ImageFolder, one epoch, reference backend)
 * works in every command, because each builds its model from the spec the run recorded: predict, eval (as a child
 * process), serve (/api/predict), export to ONNX (onnxruntime's logits against ours, relative error ≤ 1e-4),
 * safetensors and pth. A checkpoint from before the spec was recorded gets it inferred; one whose recorded spec
 * disagrees with its shapes is refused, saying both.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { runExport } from '../../src/cli/commands/export';
import { runPredict } from '../../src/cli/commands/predict';
import { readPthFile } from '../../src/interop/pth-read';
import { readSafetensorsFile } from '../../src/interop/safetensors';
import { loadWeights } from '../../src/interop/weights';
import { inferSpec, modelFromWeights, type ModelSpec } from '../../src/models';
import { loadClassifier, type Classifier } from '../../src/predict/classifier';
import { decodeCheckpoint, encodeCheckpoint } from '../../src/run/checkpoint-format';
import { startServer, type RunningServer } from '../../src/serve/server';
import { Tensor, noGrad, tidy } from '../../src/tensor';
import type { HostTensor } from '../../src/tensor/host';
import { Rng } from '../../src/util/rng';
import { removeDir, tempDir } from '../data/make';
import { expectLogitsClose, runOnnx } from '../interop/helpers';
import { writeImages, type ImageSet } from '../predict/fixtures';
import { request } from '../serve/client';
import { startCli } from '../train/trainer-fixtures/child';
import { makeDataset, tinyConfig, trainQuiet } from '../train/trainer-fixtures/setup';

const SPEC: ModelSpec = { arch: 'resnet18', width: 16, numClasses: 3, inputSize: 32 };
let root = '';
let data = '';
let run = '';
let env: Record<string, string> = {};
let images: ImageSet;
let classifier: Classifier;

before(async () => {
  root = tempDir('any-width');
  env = { RESNET_CACHE_DIR: path.join(root, 'cache'), RESNET_BACKEND: 'reference' };
  process.env.RESNET_CACHE_DIR = env.RESNET_CACHE_DIR;
  data = await makeDataset(path.join(root, 'data'));
  run = path.join(root, 'run');
  const r = await trainQuiet({ config: tinyConfig({ epochs: 1, baseWidth: 16 }), data, out: run, worker: false });
  assert.equal(r.result.status, 'completed');
  images = await writeImages(root);
  classifier = await loadClassifier(run, { backend: 'reference' });
});
after(() => removeDir(root));

/** Our engine's logits for x [N,3,32,32] with the weights at `file` (built through the factory). */
async function engineLogits(file: string, x: HostTensor): Promise<Float32Array> {
  const w = await loadWeights(file);
  const { model } = modelFromWeights(w.stateDict, { recorded: w.spec, where: file });
  try {
    return Float32Array.from(tidy(() => noGrad(() => model.forward(Tensor.fromArray(x.data as Float32Array, [...x.shape])).toArray())));
  } finally {
    model.dispose();
  }
}

function randomInput(n: number): HostTensor {
  const rng = new Rng(11);
  const data = Float32Array.from({ length: n * 3 * 32 * 32 }, () => rng.normal());
  return { dtype: 'float32', shape: [n, 3, 32, 32], data };
}

describe('a --width 16 run', () => {
  test('records its spec in run.json and in its checkpoints', async () => {
    const info = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8')) as { model: unknown };
    assert.deepEqual(info.model, SPEC);
    const w = await loadWeights(run);
    assert.equal(w.format, 'checkpoint');
    assert.deepEqual(w.spec, SPEC);
    assert.deepEqual(inferSpec(w.stateDict), SPEC);
  });

  test('predict: the classifier is built at width 16 with 3 classes; resnet predict --json answers', async () => {
    assert.deepEqual(classifier.info.spec, SPEC);
    assert.equal(classifier.info.numClasses, 3);
    const p = await classifier.classifyBytes(fs.readFileSync(images.good.png));
    assert.equal(p.probs.length, 3);
    const stdout = new PassThrough();
    let out = '';
    stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const io = { stdin: new PassThrough(), stdout, stderr: new PassThrough() };
    const code = await runPredict([images.good.png], { weights: run, topk: 3, json: true, lang: 'en', backend: 'reference' }, io);
    assert.equal(code, 0, out);
    const parsed = JSON.parse(out) as { probs: number[] } | { probs: number[] }[];
    const r = Array.isArray(parsed) ? parsed[0] : parsed;
    assert.deepEqual(r.probs, p.probs);
  });

  test('serve: /api/predict answers with 3 classes, the classifier\'s numbers', async () => {
    let server: RunningServer | undefined;
    try {
      server = await startServer({ classifier, host: '127.0.0.1', port: 0 });
      const png = fs.readFileSync(images.good.png);
      const r = await request(server.url, '/api/predict', { body: png });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json.probs, (await classifier.classifyBytes(png)).probs);
      const model = await request(server.url, '/api/model');
      assert.deepEqual([model.json.width, model.json.num_classes], [16, 3], model.text);
    } finally {
      await server?.close(1000);
    }
  });

  test('eval (child process): the report covers the 12 test images', async () => {
    const child = startCli(['eval', '--weights', run, '--data', data, '--json'], env);
    const { code } = await child.exited;
    assert.equal(code, 0, child.stderr());
    const report = JSON.parse(child.stdout()) as { n: number; classes: string[] };
    assert.equal(report.n, 12);
    assert.equal(report.classes.length, 3);
  });

  test('export onnx: onnxruntime matches our logits (1e-4 relative); safetensors and pth keep the spec', async () => {
    const onnx = path.join(root, 'w16.onnx');
    assert.equal((await runExport({ weights: run, out: onnx })).format, 'onnx');
    const x = randomInput(4);
    const out = await runOnnx(fs.readFileSync(onnx), x);
    assert.deepEqual(out.dims, [4, 3]);
    expectLogitsClose(out.data, await engineLogits(run, x), 'onnx export of a width-16 run vs our logits');
    const st = path.join(root, 'w16.safetensors');
    const pth = path.join(root, 'w16.pth');
    await runExport({ weights: run, out: st });
    await runExport({ weights: run, out: pth });
    assert.deepEqual(inferSpec(readSafetensorsFile(st).tensors), SPEC);
    assert.deepEqual(inferSpec(readPthFile(pth).stateDict), SPEC);
    assert.deepEqual((await loadClassifier(pth, { backend: 'reference' })).info.spec, SPEC);
  });
});

describe('checkpoints and their spec', () => {
  const rewrite = (name: string, spec: Record<string, unknown> | undefined): string => {
    const src = path.join(run, 'checkpoints', 'epoch-0001.ckpt');
    const c = decodeCheckpoint(fs.readFileSync(src), src);
    if (spec === undefined) delete c.spec;
    else c.spec = spec;
    const file = path.join(root, name);
    fs.writeFileSync(file, encodeCheckpoint(c));
    return file;
  };

  test('a checkpoint from before the spec was recorded gets it inferred', async () => {
    const old = rewrite('old.ckpt', undefined);
    assert.equal((await loadWeights(old)).spec, undefined);
    assert.deepEqual((await loadClassifier(old, { backend: 'reference' })).info.spec, SPEC);
  });

  test('a recorded spec that disagrees with the shapes is refused, naming both', async () => {
    const bad = rewrite('bad.ckpt', { ...SPEC, width: 8 });
    await assert.rejects(loadClassifier(bad, { backend: 'reference' }), new RegExp(
      `^Error: --weights ${bad} records the model resnet18 \\(width 8, 3 classes, 32x32 input\\), but its weights do not fit it: ` +
      'mis-shaped keys: conv1\\.0\\.weight: expected \\[8,3,3,3\\], received \\[16,3,3,3\\]; (.*?; ){4}and \\d+ more \\(\\d+ in all\\)$'));
  });
});
