/**
 * `resnet eval --weights W [--data PATH] [--tta MODE] [--json]`: test loss, accuracy, per-class accuracy and the
 * confusion matrix. --data defaults as for train (./data, else cifar10); --limit N evaluates the seeded subset that
 * train's --test-limit N evaluates (the loader's `limit`, same seed, same images), not the first N (one class, sorted).
 * The weights run through the folded inference graph (src/models/inference.ts), fp32 or bf16 (--precision); --tta
 * averages the softmax of flipped / shifted views (src/data/tta.ts, src/predict/evaluation.ts).
 */
import { Command, Option } from 'commander';
import { precisionOption } from '../precision';
import { applyPrecision } from '../../backend/precision';
import { RAW_WEIGHTS_FLAG, RAW_WEIGHTS_HELP, defaultData, resolveWeights } from '../defaults';
import { intArg, intInRange } from '../parse';
import { useBackend } from '../../backend';
import { Loader } from '../../data/loader';
import { openDataset } from '../../data';
import { loadWeights } from '../../interop/weights';
import { modelFromWeights } from '../../models';
import { InferenceGraph } from '../../models/inference';
import { TTA_MODES, type TtaMode } from '../../data/tta';
import { evaluateModel } from '../../predict/evaluation';
import { formatConfusion } from '../../train/evaluate';

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('evaluate weights on a dataset split: loss, accuracy, per-class accuracy, confusion matrix')
    .option('--weights <file>', 'checkpoint, run folder, .pth or .safetensors (default: the packaged ResNet-18)')
    .option(RAW_WEIGHTS_FLAG, RAW_WEIGHTS_HELP)
    .option('--data <path>', 'dataset, as for train (default: ./data if present, else cifar10)')
    .option('--split <name>', 'test or train', 'test')
    .option('--limit <n>', 'evaluate a seeded subset of N images (the one train --test-limit N uses with the same --seed)', intInRange(1))
    .option('--seed <n>', 'seed of the --limit subset (as train --seed)', intArg, 0)
    .option('--batch-size <n>', 'batch size', intArg, 256)
    .option('--json', 'print one JSON object')
    .addOption(precisionOption('fp32'))
    .addOption(new Option('--tta <mode>', 'test-time augmentation: off, flip (2 views) or flip-shift (6 views)').choices(TTA_MODES).default('off'))
    .action(async (o: { weights?: string; rawWeights?: boolean; data?: string; split: string; limit?: number; seed: number; batchSize: number; json?: boolean; precision: string; tta: TtaMode }) => {
      const dataPath = o.data ?? defaultData();
      if (o.split !== 'test' && o.split !== 'train') throw new Error(`eval: --split must be test or train, received ${o.split}`);
      const backend = useBackend(program.opts().backend);
      const precision = applyPrecision(o.precision, backend);
      const w = await loadWeights(resolveWeights(o.weights), { ema: !o.rawWeights });
      const data = await openDataset(dataPath, { log: o.json ? undefined : (m) => process.stderr.write(`${m}\n`) });
      const split = o.split === 'test' ? data.test : data.train;
      if (split.n === 0) throw new Error(`eval: ${dataPath} has no ${o.split} images`);
      const { model, spec } = modelFromWeights(w.stateDict, { recorded: w.spec, where: `eval: --weights ${w.path}`, backend });
      if (spec.numClasses !== data.classes.length) {
        model.dispose();
        throw new Error(`eval: the weights have ${spec.numClasses} classes, the dataset ${data.classes.length}`);
      }
      // the model built (and checked against the weights) only to read its state dict into the inference graph
      const graph = InferenceGraph.fromStateDict(model.stateDict(), backend);
      model.dispose();
      // once the weights fit: a refusal stays the one line it is
      if (!o.json) {
        for (const note of w.notes) process.stderr.write(`weights: ${note}\n`);
        process.stderr.write(`precision: ${precision}${o.tta === 'off' ? '' : `, tta: ${o.tta}`}\n`);
      }
      const loader = new Loader(split, {
        batchSize: o.batchSize, shuffle: false, seed: o.seed, dropLast: false, limit: o.limit, augment: { crop: false, flip: false },
      });
      let r;
      try {
        r = await evaluateModel(graph, loader, { tta: o.tta });
      } finally {
        graph.dispose();
        await loader.close();
      }
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ weights: w.path, format: w.format, notes: w.notes, split: o.split, tta: o.tta, classes: data.classes, ...r })}\n`);
        return;
      }
      const tta = o.tta === 'off' ? '' : ` with tta ${o.tta}`;
      process.stdout.write(`${w.path} on ${o.split} (${r.n} images)${tta}: loss ${r.loss.toFixed(4)}, accuracy ${(100 * r.acc).toFixed(2)}%\n\n`);
      process.stdout.write(`${formatConfusion(r, data.classes)}\n`);
    });
}
