/**
 * `resnet train`: the seed's training run (src/train/trainer.ts) from the command line. Every hyperparameter has a
 * flag; `--recipe` picks the defaults (seed | fast | fast5 | best); explicit flags override the recipe.
 *
 * `--resume` continues a run with the settings it was started with: the run folder's run.json supplies the config and
 * the data path, so `resnet train --resume RUN` alone is enough (as `yolo train resume` is). Flags given on the command
 * line still override it, and the trainer refuses a resume whose computation they change (unless --force).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { precisionOption } from '../precision';
import { useBackend } from '../../backend';
import { RECIPE_NAMES, RECIPES, SCHEDULES, type RecipeName, type TrainConfig } from '../../train/config';
import { TTA_MODES } from '../../data/tta';
import { train } from '../../train/trainer';
import { defaultData } from '../defaults';
import { intArg as int, numArg as num } from '../parse';
import { readRunInfo } from '../../run/run-info';

/**
 * The run folder a `--resume` value names: RUN itself, or the run holding a checkpoint file (RUN/checkpoints/X.ckpt);
 * with a bare `--resume`, the --out folder (undefined when none was given).
 */
function resumedRunDir(resume: true | string, out: string | undefined): string | undefined {
  if (resume === true) return out;
  if (fs.existsSync(resume) && fs.statSync(resume).isDirectory()) return resume;
  const dir = path.dirname(resume);
  return path.basename(dir) === 'checkpoints' ? path.dirname(dir) : dir;
}

/** The config and data path a run folder's run.json records, or null when it has none (or no config in it). */
export function savedRunSettings(runDir: string | undefined): { config: Partial<TrainConfig>; data?: string } | null {
  if (runDir === undefined) return null;
  let info;
  try {
    info = readRunInfo(runDir);
  } catch {
    return null; // unreadable: the trainer's own checks report the folder; the flags and the recipe decide here
  }
  const config = info?.config;
  if (config === null || typeof config !== 'object' || Array.isArray(config)) return null;
  const c = config as Partial<TrainConfig>;
  if (c.recipe !== undefined && !RECIPE_NAMES.includes(c.recipe)) return null;
  return { config: c, data: typeof info?.data === 'string' ? info.data : undefined };
}

function defaultOut(): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `runs/${stamp}`;
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description("train ResNet-18 on CIFAR-10 (the seed's recipe by default)")
    .option('--data <path>', 'ImageFolder root, .tar/.tar.gz, CIFAR-10 binary folder/archive, or "cifar10" (default: ./data if present, else cifar10)')
    .option('--out <dir>', 'run folder (checkpoints, TensorBoard events, metrics.jsonl)')
    .addOption(new Option('--recipe <name>', 'seed: constant lr 0.001, 200 epochs; fast: one-cycle lr 0.1, nesterov, label smoothing 0.1, 15 epochs (89.01%); fast5: 5 epochs, linear warm-up to lr 0.1 and down to 0, smoothing 0.2, no decay on batch-norm/bias (83.93% so far); best: fast5\'s rules over 30 epochs with an EMA of the weights (decay 0.999): 90.82%, the shipped weights').choices(RECIPE_NAMES).default('seed'))
    .option('--epochs <n>', 'total epochs', int)
    .option('--batch-size <n>', 'batch size', int)
    .option('--lr <x>', 'learning rate (peak rate for onecycle and linear)', num)
    .option('--momentum <x>', 'SGD momentum', num)
    .option('--weight-decay <x>', 'SGD weight decay', num)
    .option('--nesterov', 'nesterov momentum')
    .option('--no-nesterov', 'plain momentum')
    .option('--label-smoothing <x>', 'label smoothing of the cross-entropy', num)
    .addOption(new Option('--schedule <name>', 'learning-rate schedule').choices(SCHEDULES))
    .option('--warmup-fraction <x>', 'onecycle and linear: fraction of the steps spent warming up', num)
    .option('--decay-norm-bias', 'weight decay on batch-norm parameters and biases too (the seed\'s)')
    .option('--no-decay-norm-bias', 'weight decay on conv and linear weights only (the fast recipe\'s)')
    .option('--seed <n>', 'seed of initialisation, data order and augmentation', int)
    .option('--val-split <n>', 'carve N training images out as a validation split (best checkpoint chosen on it)', int)
    .option('--limit <n>', 'use only N training images (quick runs)', int)
    .option('--test-limit <n>', 'use only N test images', int)
    .option('--cutout <px>', 'Cutout augmentation square side (0: off)', int)
    .option('--no-crop', 'no RandomCrop(32, padding 4)')
    .option('--crop-padding <px>', 'RandomCrop\'s zero padding: crops move by up to this many pixels (default 4, the seed\'s)', int)
    .option('--no-flip', 'no RandomHorizontalFlip')
    .option('--alternate-flip', 'each image is flipped in every other epoch (from a random start) instead of by a coin per epoch')
    .option('--zero-init-residual', 'start each residual block as its shortcut (its last batch-norm scale at 0)')
    .option('--whiten-init <n>', 'start the stem\'s filters as the whitening directions of N training images\' 3x3 patches, and their negatives (0: off, the default)', int)
    .option('--width <n>', 'channels of the first stage (64 = the seed; smaller for quick experiments)', int)
    .addOption(precisionOption('fp32').default(undefined, 'the recipe\'s: fp32 for seed, auto for fast, fast5 and best'))
    .option('--ema <decay>', 'keep an exponential moving average of the weights with this decay (e.g. 0.999; 0: none, ' +
      'the default): evaluated each epoch, saved in the checkpoints, ranks the best epoch, read by eval/predict', num)
    .option('--lookahead <k>', 'Lookahead: every K steps pull the weights to a slow copy, harder as training ends, and end on it (0: off, the default)', int)
    .addOption(new Option('--tta-eval <mode>', 'each epoch, also the test accuracy with test-time augmentation ' +
      '(default: the recipe\'s, off for seed, flip for fast)').choices(TTA_MODES))
    .option('--resume [run]', 'continue the run in --out (or in RUN / from a checkpoint file)')
    .option('--force', 'with --resume: resume even if the configuration or the dataset changed; without: start over in a ' +
      'run folder that holds a run, moving the old run into RUN/previous-N (nothing is deleted)')
    .option('--weights <file>', 'start from these weights (.ckpt, run folder, .pth, .safetensors)')
    .option('--keep-last <k>', 'keep only the last K epoch checkpoints, besides best.ckpt (default: 5; 0 keeps all)', int)
    .addOption(new Option('--on-bad-image <policy>', 'skip (count and name) or fail on unreadable images').choices(['skip', 'fail']).default('skip'))
    .option('--strict-size', 'refuse training images that are not 32x32 (default: resize them as Pillow does)')
    .option('--no-worker', 'prepare batches on the main thread')
    .action(async (o: Record<string, unknown>, cmd: Command) => {
      const given = (key: string): boolean => cmd.getOptionValueSource(key) === 'cli';
      const resume = o.resume === true ? true : (o.resume as string | undefined);
      // resuming: the run's own settings are the defaults (unless --recipe is given), the flags given override them
      const runDir = resume !== undefined ? resumedRunDir(resume, o.out as string | undefined) : undefined;
      const saved = savedRunSettings(runDir);
      const fromRun = saved !== null && !given('recipe');
      const base: TrainConfig = fromRun
        ? { ...RECIPES[saved.config.recipe ?? 'seed'], limit: undefined, testLimit: undefined, ...saved.config }
        : RECIPES[o.recipe as RecipeName];
      const pick = <K extends keyof TrainConfig>(k: K, key: string = k): TrainConfig[K] => (given(key) || (!fromRun && o[key] !== undefined) ? (o[key] as TrainConfig[K]) : base[k]);
      const config: TrainConfig = {
        ...base,
        epochs: pick('epochs'), batchSize: pick('batchSize'), lr: pick('lr'),
        momentum: pick('momentum'), weightDecay: pick('weightDecay'),
        nesterov: pick('nesterov'), labelSmoothing: pick('labelSmoothing'),
        schedule: pick('schedule'), warmupFraction: pick('warmupFraction'),
        decayNormBias: pick('decayNormBias'), seed: pick('seed'), valSplit: pick('valSplit'),
        limit: fromRun ? pick('limit') : (o.limit as number | undefined), testLimit: fromRun ? pick('testLimit') : (o.testLimit as number | undefined),
        cutout: pick('cutout'), crop: given('crop') || !fromRun ? o.crop !== false : base.crop,
        cropPadding: pick('cropPadding'), flip: given('flip') || !fromRun ? o.flip !== false : base.flip, baseWidth: pick('baseWidth', 'width'),
        zeroInitResidual: pick('zeroInitResidual'), whitenInit: pick('whitenInit'),
        alternateFlip: pick('alternateFlip'),
        precision: pick('precision'), ema: pick('ema'), lookahead: pick('lookahead'), ttaEval: pick('ttaEval'),
      };
      if (fromRun) {
        process.stdout.write(`resuming with the settings of ${runDir}/run.json (recipe ${config.recipe}); flags given override them\n`);
      }
      const out = (o.out as string | undefined) ?? (typeof resume === 'string' && fs.existsSync(resume) && fs.statSync(resume).isDirectory() ? resume : defaultOut());
      const data = (o.data as string | undefined) ?? (fromRun && saved.data !== undefined ? saved.data : defaultData());
      const result = await train({
        config, data, out, backend: useBackend(program.opts().backend),
        resume, force: Boolean(o.force), weights: o.weights as string | undefined, keepLast: o.keepLast as number | undefined,
        onBadImage: o.onBadImage as 'skip' | 'fail', strictSize: Boolean(o.strictSize), worker: o.worker !== false,
      });
      if (result.status === 'completed') {
        process.stdout.write(`done: ${result.epochsDone} epochs, best accuracy ${(100 * result.bestAcc).toFixed(2)}%; run folder ${out}\n`);
      }
      process.exitCode = result.exitCode;
    });
}
