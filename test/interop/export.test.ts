/**
 * `resnet export` (src/cli/commands/export.ts): each format from a torch-made .pth, read back by its reader (or run
 * by onnxruntime), the format taken from --out's extension, and the refusals. One run goes through the CLI entry.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runExport } from '../../src/cli/commands/export';
import { main } from '../../src/cli/main';
import { readPthFile } from '../../src/interop/pth-read';
import { readSafetensorsFile } from '../../src/interop/safetensors';
import type { StateDict } from '../../src/tensor/host';
import { expectLogitsClose, interopFixture, referenceLogits, runOnnx, tempDir } from './helpers';

function expectSame(a: StateDict, b: StateDict): void {
  assert.deepEqual([...a.keys()], [...b.keys()]);
  for (const [k, t] of a) assert.deepEqual(b.get(k), { dtype: t.dtype, shape: [...t.shape], data: t.data }, k);
}

describe('resnet export', () => {
  const source = interopFixture('tiny_dataparallel.pth');
  const tiny = readPthFile(interopFixture('tiny_zip.pth')).stateDict;
  let tmp: ReturnType<typeof tempDir>;
  before(() => {
    tmp = tempDir();
  });
  after(() => tmp.remove());

  test('onnx: onnxruntime runs it and gives PyTorch\'s logits', async () => {
    const out = path.join(tmp.dir, 'm.onnx');
    const r = await runExport({ weights: source, out });
    assert.equal(r.format, 'onnx');
    assert.deepEqual(r.notes, ["removed the 'module.' prefix (nn.DataParallel) from 122 keys"]);
    const ref = referenceLogits('tiny_logits.pth');
    const logits = await runOnnx(fs.readFileSync(out), ref.input);
    expectLogitsClose(logits.data, ref.logits.data as Float32Array, 'exported onnx vs PyTorch');
  });

  test('safetensors: the seed\'s key names and values', async () => {
    const out = path.join(tmp.dir, 'm.safetensors');
    assert.equal((await runExport({ weights: source, out })).format, 'safetensors');
    const back = readSafetensorsFile(out);
    expectSame(tiny, back.tensors);
    assert.equal(back.metadata.format, 'pt');
  });

  test('pth: reads back as the same state dict', async () => {
    const out = path.join(tmp.dir, 'nested', 'm.pt');
    assert.equal((await runExport({ weights: source, out })).format, 'pth');
    expectSame(tiny, readPthFile(out).stateDict);
  });

  test('--format wins over the extension', async () => {
    const out = path.join(tmp.dir, 'weights.bin');
    assert.equal((await runExport({ weights: source, out, format: 'pth' })).format, 'pth');
    expectSame(tiny, readPthFile(out).stateDict);
  });

  test('refusals: no format; weights that are not the seed model (listed by name)', async () => {
    await assert.rejects(runExport({ weights: source, out: path.join(tmp.dir, 'x.bin') }),
      /^Error: export: expected --format onnx\|safetensors\|pth or an --out ending in \.onnx, \.safetensors, \.pth, \.pt, received --out .*x\.bin$/);
    await assert.rejects(runExport({ weights: interopFixture('dtypes_zip.pth'), out: path.join(tmp.dir, 'y.onnx') }),
      /^Error: export: .*dtypes_zip\.pth is not the seed's ResNet-18: missing conv1\.0\.weight; .*unexpected f64, i64, scalar, transposed, view, base/);
    assert.ok(!fs.existsSync(path.join(tmp.dir, 'y.onnx')));
  });

  test('--out a folder: refused before anything is written, naming a file to use instead; the folder unchanged', async () => {
    const dir = path.join(tmp.dir, 'a-folder');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'keep.txt'), 'x');
    await assert.rejects(runExport({ weights: source, out: dir, format: 'onnx' }),
      new RegExp(`^Error: export: --out ${dir} is a folder; expected the path of the file to write, e\\.g\\. ${dir}/model\\.onnx$`));
    assert.deepEqual(fs.readdirSync(dir), ['keep.txt']);
  });

  test('an existing --out is refused without --force (unchanged) and replaced with it', async () => {
    const out = path.join(tmp.dir, 'exists.safetensors');
    fs.writeFileSync(out, 'old contents');
    await assert.rejects(runExport({ weights: source, out }),
      new RegExp(`^Error: export: ${out} already exists; add --force to replace it, or choose another --out$`));
    assert.equal(fs.readFileSync(out, 'utf8'), 'old contents');
    await runExport({ weights: source, out, force: true });
    expectSame(tiny, readSafetensorsFile(out).tensors);
    assert.deepEqual(fs.readdirSync(tmp.dir).filter((n) => n.includes('.tmp')), [], 'no temp file');
  });

  test('an --out extension of another format than --format is refused, nothing written', async () => {
    const out = path.join(tmp.dir, 'model.onnx');
    await assert.rejects(runExport({ weights: source, out, format: 'pth' }),
      new RegExp(`^Error: export: --out ${out} ends in \\.onnx, a onnx file, but --format is pth; name the file for its format \\(e\\.g\\. ${path.join(tmp.dir, 'model')}\\.pth\\) or drop --format$`));
    assert.equal(fs.existsSync(out), false);
  });

  test('a write that fails says why in words and leaves no temp file', async () => {
    const blocker = path.join(tmp.dir, 'plain-file');
    fs.writeFileSync(blocker, 'x');
    const out = path.join(blocker, 'm.onnx');
    await assert.rejects(runExport({ weights: source, out }),
      new RegExp(`^Error: export: cannot write ${out}: a part of the path is a file, not a folder; nothing was written$`));
    // the CLI prints it once prefixed, without "resnet export:" doubled and without raw errno text
    const err: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((c: string) => { err.push(String(c)); return true; }) as typeof process.stderr.write;
    let code: number;
    try {
      code = await main(['node', 'resnet', 'export', '--weights', source, '--format', 'onnx', '--out', path.join(tmp.dir, 'a-folder')]);
    } finally {
      process.stderr.write = write;
    }
    assert.equal(code, 1);
    assert.match(err.join(''), /^resnet: export: --out .*a-folder is a folder; /);
    assert.deepEqual(fs.readdirSync(tmp.dir).filter((n) => n.includes('.tmp')), [], 'no temp file');
  });

  test('through the CLI entry point', async () => {
    const out = path.join(tmp.dir, 'cli.onnx');
    const code = await main(['node', 'resnet', 'export', '--weights', source, '--format', 'onnx', '--opset', '17', '--out', out]);
    assert.equal(code, 0);
    assert.ok(fs.statSync(out).size > 100_000);
  });
});
