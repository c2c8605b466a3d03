/**
 * What the commands use when --data or --weights is not given (src/cli/defaults.ts): ./data when present, else the
 * packaged CIFAR-10 tarball (its sha256 checked), else the download; `--data cifar10` still means the official
 * release; the packaged weights with a message that says so, and the "--weights is required" error without them.
 * Package roots and working folders are temporary folders, except where the real packaged files are the point.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { MODEL_CARD, PACKAGED_DATA, PACKAGED_WEIGHTS, defaultData, packageRoot, resolveWeights } from '../../src/cli/defaults';
import { readSafetensorsFile, readSafetensorsHeader, writeSafetensorsFile } from '../../src/interop/safetensors';
import { hostFloat32 } from '../../src/tensor/host';
import { REPO_ROOT } from '../helpers/cli';
import { tempDirMaker } from '../helpers/tmp';
import { startCli } from '../train/trainer-fixtures/child';

const tmp = tempDirMaker('cli-defaults');
// the checksum the data set's own documentation gives for cifar10-jpg.tar.gz
const DATA_SHA256 = '7854ea059adc7729ab5267c5269ccc01e6eaeea6549d5f3c834c106bae86e8ee';

function collect(): { log: (line: string) => void; lines: string[] } {
  const lines: string[] = [];
  return { log: (l) => lines.push(l), lines };
}

describe('defaultData', () => {
  test('./data in the working folder comes first, and the packaged tarball is not looked at', () => {
    const cwd = tmp();
    fs.mkdirSync(path.join(cwd, 'data', 'train'), { recursive: true });
    const c = collect();
    assert.equal(defaultData({ cwd, packageRoot: path.join(cwd, 'no-such-package'), log: c.log }), path.join(cwd, 'data'));
    assert.deepEqual(c.lines, [`data: ${path.join(cwd, 'data')} (found in the working folder)`]);
  });

  test('without ./data: the packaged CIFAR-10 tarball, its checksum verified and named', () => {
    const c = collect();
    const got = defaultData({ cwd: tmp(), packageRoot: REPO_ROOT, log: c.log });
    assert.equal(got, path.join(REPO_ROOT, 'assets', 'cifar10-jpg.tar.gz'));
    assert.equal(c.lines.length, 1);
    assert.match(c.lines[0], /^data: the packaged CIFAR-10 \(JPEG, 60,000 images, .*assets\/cifar10-jpg\.tar\.gz, 19\.4 MB, sha256 7854ea05…\)$/);
    assert.equal(createHash('sha256').update(fs.readFileSync(got)).digest('hex'), DATA_SHA256);
  });

  test('a packaged tarball that is not the one shipped is refused, with both checksums', () => {
    const root = tmp();
    fs.mkdirSync(path.join(root, 'assets'));
    fs.writeFileSync(path.join(root, PACKAGED_DATA), 'not the data set');
    const sum = createHash('sha256').update('not the data set').digest('hex');
    assert.throws(() => defaultData({ cwd: tmp(), packageRoot: root, log: () => undefined }),
      new RegExp(`data: the packaged .*cifar10-jpg\\.tar\\.gz is damaged \\(sha256 ${sum}, expected ${DATA_SHA256}\\); reinstall`));
  });

  test('a package without the tarball falls back on "cifar10" (the download), and says why', () => {
    const c = collect();
    assert.equal(defaultData({ cwd: tmp(), packageRoot: tmp(), log: c.log }), 'cifar10');
    assert.match(c.lines[0], /^data: CIFAR-10's official release \("cifar10", downloaded into the cache folder\): no \.\/data, and this package lacks assets\/cifar10-jpg\.tar\.gz$/);
  });

  test('train --data cifar10 reads the official release from the cache folder, not the packaged tarball', async () => {
    // a cached download that is not the official file: the command must stop at its MD5 check, without a download
    const root = tmp();
    const cache = path.join(root, 'cache');
    fs.mkdirSync(cache);
    fs.writeFileSync(path.join(cache, 'cifar-10-binary.tar.gz'), 'not the official release');
    const child = startCli(['train', '--data', 'cifar10', '--out', path.join(root, 'run'), '--epochs', '1'], { RESNET_CACHE_DIR: cache }, root);
    const { code } = await child.exited;
    assert.equal(code, 1, child.stderr());
    assert.match(child.stderr(), /cifar-10-binary\.tar\.gz: checksum mismatch: expected MD5 c32a1d4ab5d03f1284b67883e8d87530/);
    assert.doesNotMatch(child.stderr(), /packaged/);
  });
});

describe('packageRoot', () => {
  test('is the repository root, from the sources as from dist/', () => {
    assert.equal(packageRoot(), REPO_ROOT);
    assert.equal(packageRoot(path.join(REPO_ROOT, 'dist', 'src', 'cli')), REPO_ROOT);
    assert.throws(() => packageRoot('/'), /expected the package's package\.json \(name resnet-ts\) above \//);
  });
});

describe('resolveWeights', () => {
  function packageWith(metadata: Record<string, string>): string {
    const root = tmp();
    fs.mkdirSync(path.join(root, 'weights'));
    writeSafetensorsFile(path.join(root, PACKAGED_WEIGHTS), new Map([['fc.bias', hostFloat32([2])]]), metadata, { half: true });
    return root;
  }

  test('--weights given: used as it is, nothing said, the package not consulted', () => {
    const c = collect();
    assert.equal(resolveWeights('run/best', { packageRoot: tmp(), log: c.log }), 'run/best');
    assert.deepEqual(c.lines, []);
  });

  test('no --weights: the packaged file, with its test accuracy from its metadata', () => {
    const root = packageWith({ test_accuracy: '0.93456', test_accuracy_tta: '0.9412', tta_mode: 'flip-shift' });
    const c = collect();
    assert.equal(resolveWeights(undefined, { packageRoot: root, log: c.log }), path.join(root, 'weights', 'resnet18-cifar10.safetensors'));
    assert.deepEqual(c.lines, [`weights: the packaged ResNet-18 (93.46% test accuracy, 94.12% with --tta flip-shift, see ${path.join(root, MODEL_CARD)})`]);
  });

  test('an accuracy measured on part of the test set says on how many images', () => {
    const root = packageWith({ test_accuracy: '0.5', test_images: '1000' });
    const c = collect();
    resolveWeights(undefined, { packageRoot: root, log: c.log });
    assert.deepEqual(c.lines, [`weights: the packaged ResNet-18 (50.00% test accuracy on 1,000 test images, see ${path.join(root, MODEL_CARD)})`]);
  });

  test('a packaged file without accuracy metadata is still named', () => {
    const c = collect();
    const root = packageWith({});
    resolveWeights(undefined, { packageRoot: root, log: c.log });
    assert.deepEqual(c.lines, [`weights: the packaged ResNet-18 (see ${path.join(root, MODEL_CARD)})`]);
  });

  test('no --weights and no packaged file: --weights is required, with what it takes', () => {
    const root = tmp();
    assert.throws(() => resolveWeights(undefined, { packageRoot: root, log: () => undefined }),
      /^Error: --weights is required: expected a checkpoint \(\.ckpt\), run folder, \.safetensors or \.pth \(this package has no trained weights at .*weights\/resnet18-cifar10\.safetensors to fall back on\)$/);
  });
});

describe('the packaged weights, through the commands', () => {
  const packaged = path.join(REPO_ROOT, PACKAGED_WEIGHTS);

  test('are the seed\'s ResNet-18 in F16 (int64 counters aside), at most 25 MB, with their test accuracy recorded', () => {
    assert.ok(fs.statSync(packaged).size <= 25e6, `${fs.statSync(packaged).size} bytes`);
    const { metadata, dtypes } = readSafetensorsHeader(packaged);
    assert.equal(dtypes.get('conv1.0.weight'), 'F16');
    assert.equal(dtypes.get('fc.weight'), 'F16');
    for (const [k, d] of dtypes) assert.ok(d === 'F16' || (d === 'I64' && k.endsWith('num_batches_tracked')), `${k}: ${d}`);
    assert.equal(dtypes.size, 122);
    const acc = Number(metadata.test_accuracy);
    assert.ok(acc > 0.5 && acc <= 1, metadata.test_accuracy);
  });

  test('resnet export without --weights writes the packaged weights and says so', async () => {
    const out = path.join(tmp(), 'copy.safetensors');
    const child = startCli(['export', '--out', out, '--dtype', 'f16']);
    const { code } = await child.exited;
    assert.equal(code, 0, child.stderr());
    assert.match(child.stderr(), /^weights: the packaged ResNet-18 \(\d+\.\d\d% test accuracy, .*see .*weights\/MODEL_CARD\.md\)$/m);
    // F16 → float32 → F16 is exact: the same tensors
    assert.deepEqual(readSafetensorsFile(out).tensors, readSafetensorsFile(packaged).tensors);
  });

  test('resnet predict without --weights classifies with the packaged weights', async () => {
    const dir = tmp();
    const img = path.join(dir, 'red.png');
    await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 200, g: 30, b: 30 } } }).png().toFile(img);
    const child = startCli(['predict', img, '--json']);
    const { code } = await child.exited;
    assert.equal(code, 0, child.stderr());
    assert.match(child.stderr(), /^weights: the packaged ResNet-18 \(/m);
    const [r] = JSON.parse(child.stdout()) as { file: string; top: unknown[] }[];
    assert.ok(r.file.endsWith('red.png'), child.stdout());
  });

  test('resnet serve without --weights serves the packaged weights and says so', async () => {
    const child = startCli(['serve', '--port', '0', '--quiet']);
    try {
      await child.waitFor(/listening on http:\/\/127\.0\.0\.1:\d+/, 'stdout', 120_000);
      assert.match(child.stderr(), /^weights: the packaged ResNet-18 \(/m);
      assert.match(child.stderr(), /weights from .*weights\/resnet18-cifar10\.safetensors/);
    } finally {
      child.proc.kill('SIGTERM');
      await child.exited;
    }
  });
});
