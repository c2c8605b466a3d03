/**
 * Defaults that several subcommands share: where `train` and `eval` find the data, and which weights `predict`,
 * `eval`, `serve` and `export` use, when the command line does not say.
 *
 * The package ships both, so that the main job runs offline right after install:
 *  - assets/cifar10-jpg.tar.gz: CIFAR-10 as an ImageFolder of JPEGs (50,000 train, 10,000 test), read without
 *    extracting. Its sha256 is checked every time it is chosen: hashing its 19 MB takes under 0.1 s, far less than
 *    opening the dataset, and a check that always runs needs no cache of its own to go stale.
 *  - weights/resnet18-cifar10.safetensors: a trained ResNet-18 in half precision, described by weights/MODEL_CARD.md
 *    (both written by scripts/model-card.ts); the test accuracy in the message is read from the file's metadata.
 * Each choice is said in one line on stderr (stdout stays the command's own output, e.g. eval --json).
 *
 * What it is not: the readers (src/data, src/interop); `--data cifar10` (the official release, downloaded into the
 * cache folder) is src/data's.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { readSafetensorsHeader } from '../interop/safetensors';

/** The packaged data set and weights, relative to the package root. */
export const PACKAGED_DATA = 'assets/cifar10-jpg.tar.gz';
export const PACKAGED_DATA_SHA256 = '7854ea059adc7729ab5267c5269ccc01e6eaeea6549d5f3c834c106bae86e8ee';
export const PACKAGED_WEIGHTS = 'weights/resnet18-cifar10.safetensors';
export const MODEL_CARD = 'weights/MODEL_CARD.md';

export interface DefaultsContext {
  /** where ./data is looked for (default: the working folder) */
  readonly cwd?: string;
  /** the package root holding assets/ and weights/ (default: found above this file) */
  readonly packageRoot?: string;
  /** where the one line saying what was chosen goes (default: stderr) */
  readonly log?: (line: string) => void;
}

const toStderr = (line: string): void => void process.stderr.write(`${line}\n`);

/**
 * The package root: the first folder above `start` with a package.json named resnet-ts (the compiled file, in
 * dist/src/cli, and the source, in src/cli under tsx, sit at different depths below it).
 */
export function packageRoot(start: string = __dirname): string {
  let dir = start;
  for (let i = 0; i < 8; i++) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown };
      if (pkg.name === 'resnet-ts') return dir;
    } catch {
      // no package.json here (or not ours): look further up
    }
    dir = path.dirname(dir);
  }
  throw new Error(`resnet: expected the package's package.json (name resnet-ts) above ${start}, found none (is the package complete?)`);
}

function sha256File(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

const megabytes = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;

/** A path as a message shows it: relative to the working folder when inside it, else absolute. */
function shown(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : path.resolve(p);
}

/**
 * The default --data: ./data as the seed has it; else the packaged CIFAR-10 (checksum verified); else, in a package
 * without it, "cifar10" (the official release, downloaded). Says which on `log`.
 */
export function defaultData(ctx: DefaultsContext = {}): string {
  const log = ctx.log ?? toStderr;
  const local = ctx.cwd === undefined ? 'data' : path.join(ctx.cwd, 'data');
  if (fs.existsSync(local)) {
    log(`data: ${local} (found in the working folder)`);
    return local;
  }
  const file = path.join(ctx.packageRoot ?? packageRoot(), PACKAGED_DATA);
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (st === undefined) {
    log(`data: CIFAR-10's official release ("cifar10", downloaded into the cache folder): no ./data, and this package lacks ${PACKAGED_DATA}`);
    return 'cifar10';
  }
  const sum = sha256File(file);
  if (sum !== PACKAGED_DATA_SHA256) {
    throw new Error(`data: the packaged ${shown(file)} is damaged (sha256 ${sum}, expected ${PACKAGED_DATA_SHA256}); ` +
      'reinstall the package, or name a data set with --data');
  }
  log(`data: the packaged CIFAR-10 (JPEG, 60,000 images, ${shown(file)}, ${megabytes(st.size)}, sha256 ${sum.slice(0, 8)}…)`);
  return file;
}

/** "93.45% test accuracy" (and with TTA) from the packaged file's metadata, or "" for a file without it. */
function accuracyWords(metadata: Record<string, string>): string {
  const pct = (v: string | undefined): string | null => {
    const x = Number(v);
    return v !== undefined && Number.isFinite(x) ? `${(100 * x).toFixed(2)}%` : null;
  };
  const plain = pct(metadata.test_accuracy);
  const tta = pct(metadata.test_accuracy_tta);
  if (plain === null) return '';
  // a card made on part of the test set says so: a figure on 1,000 images is good to a percent or two
  const images = Number(metadata.test_images);
  const on = Number.isInteger(images) && images < 10_000 ? ` on ${images.toLocaleString('en-US')} test images` : '';
  return `${plain} test accuracy${tta === null ? '' : `, ${tta} with --tta ${metadata.tta_mode ?? ''}`.trimEnd()}${on}, `;
}

/** `--raw-weights` of eval, predict, serve and export: a checkpoint of a run with `train --ema` holds both. */
export const RAW_WEIGHTS_FLAG = '--raw-weights';
export const RAW_WEIGHTS_HELP = 'of a checkpoint that holds a moving average of the weights (train --ema): use its raw weights, not the average (the default)';

/**
 * The weights a command uses: --weights when given, else the packaged ResNet-18 (said on `log`, with its test
 * accuracy); without either, the error that --weights is required.
 */
export function resolveWeights(flag: string | undefined, ctx: DefaultsContext = {}): string {
  if (flag !== undefined) return flag;
  const root = ctx.packageRoot ?? packageRoot();
  const file = path.join(root, PACKAGED_WEIGHTS);
  if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) {
    throw new Error(`--weights is required: expected a checkpoint (.ckpt), run folder, .safetensors or .pth ` +
      `(this package has no trained weights at ${file} to fall back on)`);
  }
  const { metadata } = readSafetensorsHeader(file);
  (ctx.log ?? toStderr)(`weights: the packaged ResNet-18 (${accuracyWords(metadata)}see ${shown(path.join(root, MODEL_CARD))})`);
  return file;
}
