/**
 * loadWeights (src/interop/weights.ts): what `--weights` accepts everywhere. Formats are recognised by their
 * first bytes whatever the file is called; the DataParallel prefix and float64 are handled with a note;
 * our checkpoints and run folders go through src/run/checkpoint.ts.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadWeights, sniffWeightsFormat } from '../../src/interop/weights';
import { readPthFile } from '../../src/interop/pth-read';
import { writeSafetensorsFile } from '../../src/interop/safetensors';
import { saveCheckpoint } from '../../src/run/checkpoint';
import type { StateDict } from '../../src/tensor/host';
import { interopFixture, tempDir } from './helpers';

function expectSame(a: StateDict, b: StateDict, what: string): void {
  assert.deepEqual([...a.keys()], [...b.keys()], `${what}: keys`);
  for (const [k, t] of a) assert.deepEqual(b.get(k), { dtype: t.dtype, shape: [...t.shape], data: t.data }, `${what}: ${k}`);
}

describe('loadWeights', () => {
  const tiny = readPthFile(interopFixture('tiny_zip.pth')).stateDict;
  let tmp: ReturnType<typeof tempDir>;
  before(() => {
    tmp = tempDir();
  });
  after(() => tmp.remove());

  test('a .pth in the zip format', async () => {
    const r = await loadWeights(interopFixture('tiny_zip.pth'));
    assert.equal(r.format, 'pth');
    assert.equal(r.path, interopFixture('tiny_zip.pth'));
    assert.deepEqual(r.notes, []);
    expectSame(tiny, r.stateDict, 'zip');
  });

  test('a .pth in the legacy format, with a note', async () => {
    const r = await loadWeights(interopFixture('tiny_legacy.pth'));
    assert.equal(r.format, 'pth');
    assert.deepEqual(r.notes, ['read the legacy (pre-1.6) torch.save format']);
    expectSame(tiny, r.stateDict, 'legacy');
  });

  test('nn.DataParallel\'s module. prefix is removed, with a note', async () => {
    const r = await loadWeights(interopFixture('tiny_dataparallel.pth'));
    assert.deepEqual(r.notes, ["removed the 'module.' prefix (nn.DataParallel) from 122 keys"]);
    expectSame(tiny, r.stateDict, 'DataParallel');
  });

  test('float64 becomes float32 with a note naming the tensors; int64 stays', async () => {
    const r = await loadWeights(interopFixture('dtypes_zip.pth'));
    assert.deepEqual(r.notes, ['converted 1 float64 tensor(s) to float32: f64']);
    const f64 = readPthFile(interopFixture('dtypes_zip.pth')).stateDict.get('f64')!;
    assert.deepEqual(r.stateDict.get('f64'), { dtype: 'float32', shape: [2, 3], data: Float32Array.from(f64.data as Float64Array) });
    assert.equal(r.stateDict.get('i64')?.dtype, 'int64');
  });

  test('safetensors, recognised by content even when named .pth', async () => {
    const file = path.join(tmp.dir, 'actually-safetensors.pth');
    writeSafetensorsFile(file, tiny);
    assert.equal(sniffWeightsFormat(file), 'safetensors');
    const r = await loadWeights(file);
    assert.equal(r.format, 'safetensors');
    expectSame(tiny, r.stateDict, 'safetensors');
  });

  test('a torch .pth recognised by content under another name', async () => {
    const file = path.join(tmp.dir, 'weights.bin');
    fs.copyFileSync(interopFixture('tiny_legacy.pth'), file);
    assert.equal((await loadWeights(file)).format, 'pth');
  });

  test('our checkpoint file and a run folder (its latest checkpoint)', async () => {
    const run = path.join(tmp.dir, 'run');
    const ckpt = await saveCheckpoint(run, {
      model: tiny, optimizer: { name: 'sgd', hyper: {}, buffers: new Map() }, epoch: 3, step: 30, config: {},
    });
    const direct = await loadWeights(ckpt);
    assert.equal(direct.format, 'checkpoint');
    expectSame(tiny, direct.stateDict, 'checkpoint');
    const viaRun = await loadWeights(run);
    assert.equal(viaRun.path, ckpt);
    assert.ok(viaRun.notes.includes(`${run} resolved to ${ckpt}`), viaRun.notes.join('; '));
    expectSame(tiny, viaRun.stateDict, 'run folder');
  });

  test('errors: an unknown file shows its first bytes; a missing path; an unsupported dtype', async () => {
    const junk = path.join(tmp.dir, 'junk.pth');
    fs.writeFileSync(junk, 'not weights at all');
    await assert.rejects(loadWeights(junk), /^Error: --weights .*junk\.pth: expected a checkpoint \(\.ckpt\), a PyTorch state dict .* received a file starting 6e 6f 74 20/);
    await assert.rejects(loadWeights(path.join(tmp.dir, 'nope.pth')), /^Error: --weights .*nope\.pth does not exist \(expected a checkpoint file, a run folder, or RUN\/best\)$/);
    await assert.rejects(loadWeights(interopFixture('half.pth')), /^Error: .*half\.pth: tensor 'weight' has dtype float16/);
  });

  test('a safetensors file whose header length runs past its end is called that, not an unknown file', async () => {
    const cut = path.join(tmp.dir, 'cut.safetensors');
    // header length 200, then a 2-byte header '{}': 10 bytes in all
    fs.writeFileSync(cut, Buffer.from([200, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d]));
    await assert.rejects(loadWeights(cut), /^Error: .*cut\.safetensors: header length 200 runs past the end of the file \(10 bytes, header would end at 208\)$/);
  });

  test('no internal function names in the messages a user reads', async () => {
    const missingRun = path.join(tmp.dir, 'no-run');
    fs.mkdirSync(missingRun);
    for (const p of [path.join(tmp.dir, 'nope.pth'), missingRun, path.join(missingRun, 'best'), interopFixture('half.pth'), interopFixture('torchscript.pt')]) {
      await assert.rejects(loadWeights(p), (err: Error) => {
        assert.doesNotMatch(err.message, /loadWeights|resolveWeightsPath|readPth|readSafetensors/, err.message);
        return true;
      });
    }
  });
});
