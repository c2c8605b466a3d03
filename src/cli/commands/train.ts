/**
 * `resnet train`: the seed's training run (src/train/trainer.ts) from the command line. Every hyperparameter has a
 * flag; `--recipe` picks the defaults (seed | fast); explicit flags override the recipe.
 */
import * as fs from 'node:fs';
import { Command, Option } from 'commander';
import { precisionOption } from '../precision';
import { useBackend } from '../../backend';
import { RECIPE_NAMES, RECIPES, SCHEDULES, type RecipeName, type TrainConfig } from '../../train/config';
import { TTA_MODES } from '../../data/tta';
import { train } from '../../train/trainer';
import { defaultData } from '../defaults';
import { intArg as int, numArg as num } from '../parse';

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
    .addOption(new Option('--recipe <name>', 'seed: constant lr 0.001, 200 epochs; fast: one-cycle lr 0.1, nesterov, label smoothing 0.1, 15 epochs (89.01%); fast5: 5 epochs, linear warm-up to lr 0.1 and down to 0, smoothing 0.2, no decay on batch-norm/bias (83.93% so far)').choices(RECIPE_NAMES).default('seed'))
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
    .addOption(precisionOption('fp32').default(undefined, 'the recipe\'s: fp32 for seed, auto for fast and fast5'))
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
    .action(async (o: Record<string, unknown>) => {
      const recipe = RECIPES[o.recipe as RecipeName];
      const pick = <K extends keyof TrainConfig>(k: K, v: unknown): TrainConfig[K] => (v === undefined ? recipe[k] : (v as TrainConfig[K]));
      const config: TrainConfig = {
        ...recipe,
        epochs: pick('epochs', o.epochs), batchSize: pick('batchSize', o.batchSize), lr: pick('lr', o.lr),
        momentum: pick('momentum', o.momentum), weightDecay: pick('weightDecay', o.weightDecay),
        nesterov: pick('nesterov', o.nesterov), labelSmoothing: pick('labelSmoothing', o.labelSmoothing),
        schedule: pick('schedule', o.schedule), warmupFraction: pick('warmupFraction', o.warmupFraction),
        decayNormBias: pick('decayNormBias', o.decayNormBias), seed: pick('seed', o.seed), valSplit: pick('valSplit', o.valSplit),
        limit: o.limit as number | undefined, testLimit: o.testLimit as number | undefined,
        cutout: pick('cutout', o.cutout), crop: o.crop !== false,
        cropPadding: pick('cropPadding', o.cropPadding), flip: o.flip !== false, baseWidth: pick('baseWidth', o.width),
        zeroInitResidual: pick('zeroInitResidual', o.zeroInitResidual), whitenInit: pick('whitenInit', o.whitenInit),
        alternateFlip: pick('alternateFlip', o.alternateFlip),
        precision: pick('precision', o.precision), ema: pick('ema', o.ema), lookahead: pick('lookahead', o.lookahead), ttaEval: pick('ttaEval', o.ttaEval),
      };
      const resume = o.resume === true ? true : (o.resume as string | undefined);
      const out = (o.out as string | undefined) ?? (typeof resume === 'string' && fs.existsSync(resume) && fs.statSync(resume).isDirectory() ? resume : defaultOut());
      const result = await train({
        config, data: (o.data as string | undefined) ?? defaultData(), out, backend: useBackend(program.opts().backend),
        resume, force: Boolean(o.force), weights: o.weights as string | undefined, keepLast: o.keepLast as number | undefined,
        onBadImage: o.onBadImage as 'skip' | 'fail', strictSize: Boolean(o.strictSize), worker: o.worker !== false,
      });
      if (result.status === 'completed') {
        process.stdout.write(`done: ${result.epochsDone} epochs, best accuracy ${(100 * result.bestAcc).toFixed(2)}%; run folder ${out}\n`);
      }
      process.exitCode = result.exitCode;
    });
}
