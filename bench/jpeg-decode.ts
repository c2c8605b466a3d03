/**
 * JPEG decoding of a folder of small images (e.g. the CIFAR-10 JPEGs): the JPEG addon (libjpeg-turbo, native/jpeg.cc)
 * against sharp, one call per image and one joined call per group of 256, and whether the addon's pixels equal
 * sharp's for every image. Figures only, no assertions.
 *
 *   mkdir -p /tmp/cifar && tar xzf ../shared/data/cifar10-jpg.tar.gz -C /tmp/cifar
 *   npx tsx bench/jpeg-decode.ts /tmp/cifar/cifar10/test [--limit N]
 */
import * as fs from 'node:fs';
import sharp from 'sharp';
import { decodeImage, isPlainJpeg } from '../src/data/decode';
import { nativeJpegDecoder } from '../src/data/jpeg-native';
import { expandInputs } from '../src/predict/predict';

const GROUP = 256;

async function timed<T>(f: () => Promise<T>): Promise<{ r: T; wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await f();
  const c = process.cpuUsage(c0);
  return { r, wall: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 };
}

async function main(): Promise<void> {
  const dir = process.argv[2];
  const li = process.argv.indexOf('--limit');
  const limit = li > 0 ? Number(process.argv[li + 1]) : Infinity;
  if (!dir) throw new Error('usage: npx tsx bench/jpeg-decode.ts DIR [--limit N]');
  const native = nativeJpegDecoder();
  if (!native) throw new Error('jpeg-decode: the JPEG addon is not built (apt-get install -y libjpeg-dev; npm run build:native)');
  const files = (await expandInputs([dir])).map((e) => e.file).slice(0, limit);
  const bytes = files.map((f) => new Uint8Array(fs.readFileSync(f)));
  const plain = bytes.filter((b) => isPlainJpeg(b, 32, 32));
  const n = plain.length;
  console.log(`${files.length} files under ${dir}, ${n} plain 32x32 JPEGs; libjpeg API ${native.libjpegVersion}, sharp ${sharp.versions.sharp}`);
  const groups = (): Uint8Array[][] => Array.from({ length: Math.ceil(n / GROUP) }, (_, g) => plain.slice(g * GROUP, (g + 1) * GROUP));
  const ours = await timed(async () => groups().map((g) => native.decode(g, 32, 32)));
  const one = await timed(async () => { const out: Uint8Array[] = []; for (const b of plain) out.push((await decodeImage(b)).data); return out; });
  const joined = await timed(async () => {
    for (const g of groups()) await sharp(g, { join: { across: 1 } }).toColourspace('srgb').removeAlpha().raw().toBuffer();
  });
  let refused = 0;
  let differ = 0;
  ours.r.forEach(({ rgb, ok }, g) => ok.forEach((f, k) => {
    if (f !== 1) { refused++; return; }
    const want = one.r[g * GROUP + k];
    const got = rgb.subarray(k * 3072, (k + 1) * 3072);
    if (got.some((v, i) => v !== want[i])) differ++;
  }));
  const line = (what: string, t: { wall: number; cpu: number }): string =>
    `${what.padEnd(34)} ${(t.wall * 1e6 / n).toFixed(0).padStart(5)} us/image wall, ${(t.cpu * 1e6 / n).toFixed(0).padStart(5)} us/image CPU`;
  console.log(line('addon (libjpeg-turbo), groups of 256', ours));
  console.log(line('sharp, one call per image', one));
  console.log(line('sharp, joined groups of 256', joined));
  console.log(`addon against sharp: ${n - refused - differ} identical, ${differ} different, ${refused} refused`);
  console.log(JSON.stringify({ images: n, addon_us_cpu: ours.cpu * 1e6 / n, sharp_one_us_cpu: one.cpu * 1e6 / n, sharp_join_us_cpu: joined.cpu * 1e6 / n, identical: n - refused - differ, different: differ, refused }));
}
void main();
