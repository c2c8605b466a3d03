/**
 * `resnet data --data PATH [--json]`: opens a dataset as training would (decoding it into the cache on first
 * use) and reports counts per class and split, original image sizes, bad files with reasons, and cache status.
 * A thin layer over openDataset/summarizeDataset (src/data); all checks live there.
 */
import { Command, Option } from 'commander';
import { intInRange } from '../parse';
import { formatSummary, openDataset, summarizeDataset } from '../../data';

interface DataOptions {
  data: string;
  json?: boolean;
  onBadImage: 'skip' | 'fail';
  cacheDir?: string;
  cache: boolean;
  strictSize?: boolean;
  maxPixels?: number;
}

/** Where the command writes; tests pass their own. */
export interface DataCommandIO {
  out: (text: string) => void;
  err: (text: string) => void;
}

const STDIO: DataCommandIO = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

export function registerData(program: Command, io: DataCommandIO = STDIO): void {
  program
    .command('data')
    .description('inspect a dataset: counts per class and split, image sizes, bad files, decode cache')
    .requiredOption('--data <path>', 'ImageFolder root or .tar/.tar.gz, CIFAR-10 binary folder or cifar-10-binary.tar.gz, or "cifar10" (download)')
    .option('--json', 'print the summary as JSON')
    .addOption(new Option('--on-bad-image <policy>', 'a bad image is skipped and reported, or stops the run').choices(['skip', 'fail']).default('skip'))
    .option('--cache-dir <dir>', 'decode cache and download folder (default $RESNET_CACHE_DIR or ~/.cache/resnet-ts)')
    .option('--no-cache', 'neither read nor write the decode cache')
    .option('--strict-size', 'refuse images that are not 32x32 instead of resizing them')
    .option('--max-pixels <n>', 'refuse images whose header declares more pixels (default 89478485)', intInRange(1))
    .action(async (opts: DataOptions) => {
      const d = await openDataset(opts.data, {
        onBadImage: opts.onBadImage,
        cacheDir: opts.cacheDir,
        noCache: !opts.cache,
        strictSize: !!opts.strictSize,
        maxPixels: opts.maxPixels,
        log: (m) => io.err(`${m}\n`),
        progress: !opts.json,
      });
      const s = summarizeDataset(d);
      io.out(opts.json ? `${JSON.stringify(s, null, 2)}\n` : formatSummary(s));
    });
}
