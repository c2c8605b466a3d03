/**
 * The real-data check of the data pipeline, on ../shared/data/cifar10-jpg.tar.gz (skipped with a message when absent):
 * 50000/10000 images, 5000/1000 per class, labels equal to folder names. The first run decodes the whole tarball
 * (about a minute here); the decode cache in $TMPDIR/resnet-ts-test-real-cache makes later runs take a second.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { openDataset } from '../../src/data/dataset';

function findTarball(): string | null {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  const candidate = resolve(dir, '..', 'shared', 'data', 'cifar10-jpg.tar.gz');
  return existsSync(candidate) ? candidate : null;
}

const tarball = findTarball();

test('cifar10-jpg.tar.gz: 50000/10000 images, 5000/1000 per class, labels equal to folders', { skip: tarball === null ? 'no ../shared/data/cifar10-jpg.tar.gz' : false, timeout: 600_000 }, async () => {
  const d = await openDataset(tarball!, { cacheDir: join(tmpdir(), 'resnet-ts-test-real-cache') });
  assert.deepEqual(d.classes, ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']);
  assert.equal(d.train.n, 50000);
  assert.equal(d.test.n, 10000);
  assert.deepEqual(d.badFiles, []);
  assert.deepEqual(d.sizes, { '32x32': 60000 });
  for (const [name, split, each] of [['train', d.train, 5000], ['test', d.test, 1000]] as const) {
    const counts = new Array(10).fill(0);
    for (let i = 0; i < split.n; i++) {
      counts[split.labels[i]]++;
      const folder = split.names![i].split('/');
      assert.equal(folder[1], name);
      assert.equal(folder[2], d.classes[split.labels[i]], split.names![i]);
    }
    assert.deepEqual(counts, new Array(10).fill(each), name);
  }
});
