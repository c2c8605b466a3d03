/** `resnet eval --weights W --data PATH [--json]`: test loss, accuracy, per-class accuracy and the confusion matrix. */
import { Command } from 'commander';
import { intArg } from '../parse';
import { useBackend } from '../../backend';
import { Loader } from '../../data/loader';
import { openDataset } from '../../data';
import { loadWeights } from '../../interop/weights';
import { resnet18 } from '../../models/resnet';
import { evaluate, formatConfusion } from '../../train/evaluate';

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('evaluate weights on a dataset split: loss, accuracy, per-class accuracy, confusion matrix')
    .requiredOption('--weights <file>', 'checkpoint, run folder, .pth or .safetensors')
    .option('--data <path>', 'dataset (as for train)', 'data')
    .option('--split <name>', 'test or train', 'test')
    .option('--limit <n>', 'evaluate only the first N images', intArg)
    .option('--batch-size <n>', 'batch size', intArg, 256)
    .option('--json', 'print one JSON object')
    .action(async (o: { weights: string; data: string; split: string; limit?: number; batchSize: number; json?: boolean }) => {
      if (o.split !== 'test' && o.split !== 'train') throw new Error(`eval: --split must be test or train, received ${o.split}`);
      const backend = useBackend(program.opts().backend);
      const w = await loadWeights(o.weights);
      const data = await openDataset(o.data, { log: o.json ? undefined : (m) => process.stderr.write(`${m}\n`) });
      const split = o.split === 'test' ? data.test : data.train;
      if (split.n === 0) throw new Error(`eval: ${o.data} has no ${o.split} images`);
      const fc = w.stateDict.get('fc.weight');
      const conv = w.stateDict.get('conv1.0.weight');
      const model = resnet18({ numClasses: fc ? fc.shape[0] : data.classes.length, baseWidth: conv ? conv.shape[0] : 64, backend });
      model.loadStateDict(w.stateDict);
      if (fc && fc.shape[0] !== data.classes.length) {
        throw new Error(`eval: the weights have ${fc.shape[0]} classes, the dataset ${data.classes.length}`);
      }
      const loader = new Loader(split, {
        batchSize: o.batchSize, shuffle: false, seed: 0, dropLast: false, limit: undefined, augment: { crop: false, flip: false },
      });
      const sub = o.limit ? new Loader({ ...split, n: Math.min(o.limit, split.n) }, loader.opts) : loader;
      const r = await evaluate(model, sub, data.classes.length);
      model.dispose();
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ weights: w.path, format: w.format, split: o.split, classes: data.classes, ...r })}\n`);
        return;
      }
      process.stdout.write(`${w.path} on ${o.split} (${r.n} images): loss ${r.loss.toFixed(4)}, accuracy ${(100 * r.acc).toFixed(2)}%\n\n`);
      process.stdout.write(`${formatConfusion(r, data.classes)}\n`);
    });
}
