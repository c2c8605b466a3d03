/**
 * Data pipeline benchmark: prints figures, asserts nothing.
 *
 * - first decode of an ImageFolder tarball (no cache), and the tar read alone;
 * - cached load (the decode cache written by the first decode);
 * - augmentation + normalisation of one batch of 128 (crop+flip, +cutout, none), and a whole epoch through the
 *   Loader with and without the worker thread;
 * - prediction preprocessing: a 32x32 JPEG, and a large legal photo (8000x6000, under the pixel limit).
 * Run: `npx tsx bench/data.ts [path/to/cifar10-jpg.tar.gz]` (default ../shared/data/cifar10-jpg.tar.gz).
 * The cache goes to a temporary folder, removed at the end. This machine is shared: quote figures with the load.
 */
import { existsSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { readTarArchive } from '../src/data/archive';
import { buildBatchX } from '../src/data/augment';
import { openDataset } from '../src/data/dataset';
import { preprocessForModel } from '../src/data/decode';
import { isImagePath } from '../src/data/imagefolder';
import { Loader } from '../src/data/loader';
import type { Split } from '../src/data/types';

const line = (name: string, value: string): void => console.log(`${name.padEnd(44)} ${value}`);
const secs = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await fn();
  return [r, performance.now() - t0];
}

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

async function benchDecode(tarball: string, cacheDir: string): Promise<Split> {
  const cpu0 = process.cpuUsage();
  const [tar, tarMs] = await timed(() => readTarArchive(tarball, isImagePath));
  line('tar.gz read (gunzip + tar, bytes kept)', `${secs(tarMs)} (${tar.data.size} images)`);
  const [d, ms] = await timed(() => openDataset(tarball, { cacheDir }));
  const cpu = process.cpuUsage(cpu0);
  line('first decode of the tarball (all, + cache write)', `${secs(ms)} (${d.train.n}+${d.test.n} images, ${((ms * 1000) / (d.train.n + d.test.n)).toFixed(0)} us/image)`);
  line('  process CPU time (user+sys, incl. tar read)', secs((cpu.user + cpu.system) / 1000));
  const loads: number[] = [];
  for (let i = 0; i < 5; i++) {
    const [c, cms] = await timed(() => openDataset(tarball, { cacheDir }));
    if (c.cache.status !== 'hit') throw new Error(`bench: expected a cache hit, received ${c.cache.status}`);
    loads.push(cms);
  }
  line('cached load (median of 5)', `${secs(median(loads))} (min ${secs(Math.min(...loads))})`);
  return d.train;
}

function benchAugment(train: Split): void {
  const idx = Int32Array.from({ length: 128 }, (_, i) => (i * 389) % train.n);
  for (const [name, aug] of [['crop+flip', { crop: true, flip: true }], ['crop+flip+cutout16', { crop: true, flip: true, cutout: 16 }], ['none (normalise only)', null]] as const) {
    const times: number[] = [];
    for (let r = 0; r < 60; r++) {
      const t0 = performance.now();
      buildBatchX(train.images, idx, r, 0, aug);
      times.push(performance.now() - t0);
    }
    line(`batch of 128, ${name} (median of 60)`, `${median(times.slice(10)).toFixed(2)} ms`);
  }
}

async function benchLoader(train: Split): Promise<void> {
  for (const worker of [false, true]) {
    const loader = new Loader(train, { batchSize: 128, shuffle: true, augment: { crop: true, flip: true }, seed: 0, dropLast: true, worker });
    const [n, ms] = await timed(async () => {
      let k = 0;
      for await (const b of loader.batches(0)) k += b.n;
      return k;
    });
    await loader.close();
    line(`epoch through Loader, worker=${worker}`, `${secs(ms)} for ${n} images (${(ms / loader.numBatches).toFixed(2)} ms/batch)`);
  }
}

async function benchPredict(): Promise<void> {
  const small = await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 90, g: 120, b: 30 } } }).jpeg().toBuffer();
  const times: number[] = [];
  for (let i = 0; i < 200; i++) times.push((await timed(() => preprocessForModel(small)))[1]);
  line('preprocessForModel, 32x32 JPEG (median of 200)', `${median(times).toFixed(2)} ms`);
  const big = await sharp({ create: { width: 8000, height: 6000, channels: 3, background: { r: 0, g: 0, b: 0 }, noise: { type: 'gaussian', mean: 128, sigma: 40 } } }).jpeg({ quality: 85 }).toBuffer();
  const rss0 = process.memoryUsage().rss;
  const [, ms] = await timed(() => preprocessForModel(big));
  line('preprocessForModel, 8000x6000 JPEG', `${secs(ms)} (${(big.length / 2 ** 20).toFixed(1)} MiB file, RSS +${((process.memoryUsage().rss - rss0) / 2 ** 20).toFixed(0)} MiB)`);
}

async function main(): Promise<void> {
  const tarball = resolve(process.argv[2] ?? join(__dirname, '..', '..', 'shared', 'data', 'cifar10-jpg.tar.gz'));
  if (!existsSync(tarball)) throw new Error(`bench/data: no tarball at ${tarball}; pass its path`);
  const cacheDir = join(tmpdir(), `resnet-ts-bench-data-${process.pid}`);
  line('load average at start (1, 5, 15 min)', loadavg().map((x) => x.toFixed(1)).join(', '));
  try {
    const train = await benchDecode(tarball, cacheDir);
    benchAugment(train);
    await benchLoader(train);
    await benchPredict();
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
  line('load average at end', loadavg().map((x) => x.toFixed(1)).join(', '));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
