/**
 * Makes the weights that ship with the package and their model card, from a training run:
 *
 *   npx tsx scripts/model-card.ts RUN_OR_CHECKPOINT [--run RUN_DIR] [--data PATH] [--out-dir weights] [--limit N]
 *
 * e.g. `npx tsx scripts/model-card.ts runs/fast5-s0` (the run's newest checkpoint), or a copied checkpoint with the
 * run folder it came from: `npx tsx scripts/model-card.ts /tmp/epoch-0005.ckpt --run runs/fast5-s0`.
 * Writes OUT_DIR/resnet18-cifar10.safetensors (the weights in half precision, F16; the accuracies in its metadata,
 * which `resnet predict`, `eval`, `serve` and `export` quote when they use it by default) and OUT_DIR/MODEL_CARD.md:
 * data, recipe and the train command (from RUN/run.json), epochs and wall time (RUN/metrics.jsonl), test accuracy of
 * the F16 weights without and with test-time augmentation (flip: 2 views; flip-shift: 6 views, src/data/tta.ts),
 * the float32 checkpoint's accuracy beside them, per-class accuracy, the confusion's largest off-diagonal pairs, CPU
 * and precision. --data defaults to the packaged test set (assets/cifar10-jpg.tar.gz); --limit N evaluates N evenly
 * spaced test images only (a quick look; the card says so).
 *
 * What it is: the evaluation runs the F16 file's own weights (read back from the bytes written) through the folded
 * inference graph (src/models/inference.ts) in fp32 on the default backend, every view of a batch in one pass.
 * What it is not: a trainer, nor `resnet eval` (which evaluates any weights, one TTA mode at a time). It reads the
 * run folder and never writes there.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { useBackend } from '../src/backend';
import { openDataset } from '../src/data';
import { normalizeInto } from '../src/data/normalize';
import { softmaxRows, ttaViews } from '../src/data/tta';
import { loadWeights } from '../src/interop/weights';
import { readSafetensors, writeSafetensors } from '../src/interop/safetensors';
import { InferenceGraph } from '../src/models/inference';
import { specForWeights } from '../src/models';
import { readCheckpointFile, resolveWeightsPath } from '../src/run/checkpoint';
import { RECIPE_NAMES, RECIPES, type RecipeName } from '../src/train/config';
import { cpuModel } from '../src/util/cpu';
import type { StateDict } from '../src/tensor/host';
import { PACKAGED_DATA, PACKAGED_DATA_SHA256, PACKAGED_WEIGHTS, packageRoot } from '../src/cli/defaults';

interface Args { source: string; run?: string; data: string; outDir: string; limit?: number; batch: number }

function parseArgs(argv: string[]): Args {
  const root = packageRoot(path.join(__dirname, '..', 'src', 'cli'));
  const a: Partial<Args> = { data: path.join(root, PACKAGED_DATA), outDir: path.join(root, path.dirname(PACKAGED_WEIGHTS)), batch: 200 };
  for (let i = 0; i < argv.length; i++) {
    const v = (): string => {
      if (i + 1 >= argv.length) throw new Error(`model-card: ${argv[i]} needs a value`);
      return argv[++i];
    };
    const flagName = argv[i];
    if (flagName === '--run') a.run = v();
    else if (flagName === '--data') a.data = v();
    else if (flagName === '--out-dir') a.outDir = v();
    else if (flagName === '--limit') a.limit = Number(v());
    else if (flagName === '--batch-size') a.batch = Number(v());
    else if (flagName.startsWith('--')) throw new Error(`model-card: unknown option ${flagName}`);
    else if (a.source === undefined) a.source = flagName;
    else throw new Error(`model-card: expected one checkpoint or run folder, received also ${flagName}`);
  }
  if (a.source === undefined) throw new Error('usage: npx tsx scripts/model-card.ts RUN_OR_CHECKPOINT [--run RUN_DIR] [--data PATH] [--out-dir DIR] [--limit N]');
  return a as Args;
}

/** The run folder: --run, the folder given, or the one above a checkpoint's checkpoints/ folder. */
function runFolderOf(args: Args): string {
  if (args.run !== undefined) return args.run;
  if (fs.statSync(args.source).isDirectory()) return args.source;
  const up = path.dirname(path.dirname(path.resolve(args.source)));
  if (fs.existsSync(path.join(up, 'run.json'))) return up;
  throw new Error(`model-card: ${args.source} is not inside a run folder; name the run with --run RUN_DIR`);
}

/** The epoch records of RUN/metrics.jsonl, the last record of each epoch (a resumed run may repeat one). */
function epochRecords(runDir: string): Record<string, number>[] {
  const text = fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8');
  const byEpoch = new Map<number, Record<string, number>>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue; // a line being written as we read
    }
    if (r.kind === 'epoch' && typeof r.epoch === 'number') byEpoch.set(r.epoch, r as Record<string, number>);
  }
  return [...byEpoch.values()].sort((x, y) => x.epoch - y.epoch);
}

/** `resnet train ...` as run.json's config implies it: the recipe, then each field that differs from the recipe's. */
function trainCommand(info: Record<string, unknown>, runDir: string): string {
  const config = (info.config ?? {}) as Record<string, unknown>;
  // the recipe the run named (runs older than its name ran what is now `fast`), the flags that differ from it after
  const recipeName = (RECIPE_NAMES as string[]).includes(String(config.recipe)) ? (config.recipe as RecipeName) : 'fast';
  const recipe = RECIPES[recipeName] as unknown as Record<string, unknown>;
  const parts = ['resnet train', `--recipe ${recipeName}`, `--data ${String(info.data)}`, `--out ${path.basename(runDir)}`];
  for (const [k, v] of Object.entries(config)) {
    if (k === 'recipe' || !(k in recipe) || JSON.stringify(recipe[k]) === JSON.stringify(v)) continue;
    const flag = k === 'baseWidth' ? 'width' : k.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`);
    parts.push(typeof v === 'boolean' ? (v ? `--${flag}` : `--no-${flag}`) : `--${flag} ${String(v)}`);
  }
  return parts.join(' ');
}

interface Tally { correct: number; confusion: number[][] }
const tally = (k: number): Tally => ({ correct: 0, confusion: Array.from({ length: k }, () => new Array<number>(k).fill(0)) });

function argmax(a: ArrayLike<number>, at: number, k: number): number {
  let best = 0;
  for (let j = 1; j < k; j++) if (a[at + j] > a[at + best]) best = j;
  return best;
}

/** Mean of some views' softmax rows, [n, k]. */
function meanOf(probs: Float32Array[], n: number, k: number): Float32Array {
  const out = new Float32Array(n * k);
  for (const p of probs) for (let i = 0; i < n * k; i++) out[i] += p[i] / probs.length;
  return out;
}

interface Results { n: number; f16: Tally; flip: Tally; flipShift: Tally; f32: Tally; agree: number; maxLogitDiff: number; seconds: number }

/** Every test image through both graphs: F16 weights with the six views, float32 weights on the image alone. */
function evaluate(half: InferenceGraph, full: InferenceGraph, images: Uint8Array, labels: Uint8Array, n: number, batch: number, k: number): Results {
  const r: Results = { n, f16: tally(k), flip: tally(k), flipShift: tally(k), f32: tally(k), agree: 0, maxLogitDiff: 0, seconds: 0 };
  const t0 = performance.now();
  for (let b0 = 0; b0 < n; b0 += batch) {
    const m = Math.min(batch, n - b0);
    const x = new Float32Array(m * 3072);
    for (let i = 0; i < m; i++) normalizeInto(x, i * 3072, images, (b0 + i) * 3072, 1024);
    const shape = [m, 3, 32, 32];
    const views = ttaViews(x, shape, 'flip-shift'); // the image, its mirror, then the four shifts
    const logits = views.map((v) => half.forward(v, shape));
    const probs = logits.map((l) => softmaxRows(l, m, k));
    const flip = meanOf(probs.slice(0, 2), m, k);
    const flipShift = meanOf(probs, m, k);
    const f32 = full.forward(x, shape);
    for (let i = 0; i < m; i++) {
      const y = labels[b0 + i];
      const count = (t: Tally, p: number): void => {
        t.confusion[y][p]++;
        if (p === y) t.correct++;
      };
      const p16 = argmax(logits[0], i * k, k);
      const p32 = argmax(f32, i * k, k);
      count(r.f16, p16);
      count(r.flip, argmax(flip, i * k, k));
      count(r.flipShift, argmax(flipShift, i * k, k));
      count(r.f32, p32);
      if (p16 === p32) r.agree++;
    }
    for (let i = 0; i < m * k; i++) r.maxLogitDiff = Math.max(r.maxLogitDiff, Math.abs(logits[0][i] - f32[i]));
    process.stderr.write(`\r${b0 + m}/${n} images, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  process.stderr.write('\n');
  r.seconds = (performance.now() - t0) / 1000;
  return r;
}

const pct = (x: number, n: number): string => `${((100 * x) / n).toFixed(2)}%`;

/** The test data in words: the packaged tarball is named as such, wherever the copy read lies. */
function dataWords(dataPath: string, sha: string): string {
  if (sha === PACKAGED_DATA_SHA256) return `the packaged \`${PACKAGED_DATA}\` (sha256 ${sha.slice(0, 16)}…)`;
  return `${dataPath} (sha256 ${sha.slice(0, 16)}…)`;
}

/** The largest off-diagonal cells of a confusion matrix: "true → predicted: count". */
function topConfusions(t: Tally, classes: readonly string[], count: number): string[] {
  const cells: [number, number, number][] = [];
  t.confusion.forEach((row, i) => row.forEach((c, j) => { if (i !== j && c > 0) cells.push([c, i, j]); }));
  cells.sort((a, b) => b[0] - a[0]);
  return cells.slice(0, count).map(([c, i, j]) => `| ${classes[i]} | ${classes[j]} | ${c} | ${pct(c, t.confusion[i].reduce((s, v) => s + v, 0))} |`);
}

function card(o: {
  info: Record<string, unknown>; runDir: string; ckpt: string; ckptEpoch: number; epochs: Record<string, number>[]; r: Results;
  classes: string[]; dataPath: string; dataSha: string; limit?: number; fileBytes: number; fileSha: string; params: number; notes: string[]; load: number;
}): string {
  const { r, classes } = o;
  const config = (o.info.config ?? {}) as Record<string, unknown>;
  const shown = o.epochs.filter((e) => e.epoch <= o.ckptEpoch);
  const hours = shown.reduce((s, e) => s + (e.seconds ?? 0), 0) / 3600;
  // a run that kept a moving average logged its test accuracy too (ema_test_acc): the shipped weights are that average
  const withEma = shown.some((e) => typeof e.ema_test_acc === 'number');
  const opt = (v: number | undefined): string => (typeof v === 'number' ? pct(v, 1) : '–');
  const epochRows = shown.map((e, i) => {
    const cum = shown.slice(0, i + 1).reduce((s, x) => s + (x.seconds ?? 0), 0);
    const ema = withEma ? ` ${opt(e.ema_test_acc)} | ${opt(e.ema_test_acc_tta)} |` : '';
    return `| ${e.epoch} | ${pct(e.test_acc, 1)} | ${opt(e.test_acc_tta)} |${ema} ${(e.seconds / 60).toFixed(1)} | ${(cum / 3600).toFixed(2)} |`;
  });
  const epochHead = withEma
    ? '| epoch | test accuracy (raw weights) | TTA (as logged) | EMA weights | EMA TTA | minutes | cumulative hours |\n|---|---|---|---|---|---|---|'
    : '| epoch | test accuracy | TTA (as logged) | minutes | cumulative hours |\n|---|---|---|---|---|';
  const perClass = classes.map((c, i) => {
    const row = (t: Tally): string => {
      const of = t.confusion[i].reduce((s, v) => s + v, 0);
      return of === 0 ? '–' : pct(t.confusion[i][i], of);
    };
    return `| ${c} | ${row(r.f16)} | ${row(r.flipShift)} |`;
  });
  const subset = o.limit !== undefined ? ` (${r.n} evenly spaced ones, --limit ${o.limit}: not the whole test set)` : '';
  const valSplit = typeof config.valSplit === 'number' ? config.valSplit : 0;
  const trainLimit = (typeof config.limit === 'number' ? `, of which the run used ${config.limit} (--limit)` : '') +
    (valSplit > 0 ? `, less the ${valSplit.toLocaleString('en-US')} held out as a validation split (--val-split): ${(50000 - valSplit).toLocaleString('en-US')} trained on` : '');
  return `# ResNet-18 on CIFAR-10: the weights that ship with resnet-ts

\`${PACKAGED_WEIGHTS}\`: the seed's ResNet-18 (${(o.params / 1e6).toFixed(2)}M parameters, the seed's state_dict keys), trained by
this project's own trainer, stored in half precision (safetensors F16, ${(o.fileBytes / 1e6).toFixed(1)} MB,
sha256 ${o.fileSha}).

\`resnet predict\`, \`eval\`, \`serve\` and \`export\` use it when no \`--weights\` is given. This card and the file were
written by \`npx tsx scripts/model-card.ts\` (see its header).

## Test accuracy

On the ${r.n} CIFAR-10 test images${subset} of ${dataWords(o.dataPath, o.dataSha)},
the F16 weights as shipped, in fp32 arithmetic:

| evaluation | accuracy |
|---|---|
| one view (\`resnet eval\`) | **${pct(r.f16.correct, r.n)}** |
| TTA flip (2 views: image and mirror, \`--tta flip\`) | ${pct(r.flip.correct, r.n)} |
| TTA flip-shift (6 views: those two, each shifted 2 px both ways, \`--tta flip-shift\`) | ${pct(r.flipShift.correct, r.n)} |
| the float32 checkpoint, one view | ${pct(r.f32.correct, r.n)} |

F16 against float32 weights: the same top-1 class for ${pct(r.agree, r.n)} of the images, largest logit difference
${r.maxLogitDiff.toPrecision(3)}. The images are the official test set re-encoded as JPEG (lossy), so figures on
the official binary release differ a little.

## Training

- Data: ${String(o.info.data)} (CIFAR-10 train split, 50,000 JPEG images${trainLimit}; dataset fingerprint ${String(o.info.fingerprint ?? '?').slice(0, 23)}…).
- Recipe: \`${String(config.recipe)}\`; the configuration as run.json records it:
  \`${JSON.stringify(config)}\`
- Command (reconstructed from that configuration): \`${trainCommand(o.info, o.runDir)}\`
- Checkpoint: ${path.basename(o.ckpt)}, epoch ${o.ckptEpoch}${config.epochs !== undefined ? ` of ${String(config.epochs)}` : ''}${o.notes.length > 0 ? ` (${o.notes.join('; ')})` : ''}.
- Wall time: ${hours.toFixed(2)} h for ${shown.length} epoch${shown.length === 1 ? '' : 's'} (the sum of metrics.jsonl's per-epoch seconds, evaluation included).
- Machine: ${String(o.info.backend ?? '?')}; precision ${String(o.info.precision ?? config.precision ?? '?')}; Node ${String(o.info.node ?? '?')}.

${epochHead}
${epochRows.join('\n')}

## Per class (F16 weights)

| class | one view | TTA flip-shift |
|---|---|---|
${perClass.join('\n')}

## Most frequent confusions (one view)

| true class | predicted | images | of the class |
|---|---|---|---|
${topConfusions(r.f16, classes, 8).join('\n')}

## This card

Evaluated on ${cpuModel()} (${os.cpus().length} logical CPUs, load average ${o.load.toFixed(1)} at the start: a machine shared
with other work), ${useBackend().describe()}, in ${r.seconds.toFixed(0)} s (7 forward passes per image).
Parameters: ${o.params.toLocaleString('en-US')}.
`;
}

/** The test split, or `limit` evenly spaced images of it (the split is sorted by class: the first N are one class). */
function testSubset(test: { n: number; images: Uint8Array; labels: Uint8Array }, limit?: number): { images: Uint8Array; labels: Uint8Array; n: number } {
  if (limit === undefined || limit >= test.n) return { images: test.images, labels: test.labels, n: test.n };
  const images = new Uint8Array(limit * 3072);
  const labels = new Uint8Array(limit);
  for (let i = 0; i < limit; i++) {
    const j = Math.floor((i * test.n) / limit);
    images.set(test.images.subarray(j * 3072, (j + 1) * 3072), i * 3072);
    labels[i] = test.labels[j];
  }
  return { images, labels, n: limit };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const load = os.loadavg()[0];
  const runDir = runFolderOf(args);
  const ckpt = resolveWeightsPath(args.source, (m) => process.stderr.write(`${m}\n`));
  const info = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')) as Record<string, unknown>;
  const loaded = await loadWeights(ckpt);
  const ckptEpoch = loaded.format === 'checkpoint' ? (await readCheckpointFile(ckpt)).epoch : Number.NaN;
  const spec = specForWeights(loaded.stateDict, loaded.spec, `model-card: ${ckpt}`);
  // the shipped tensors exactly: F16 bytes read back (metadata comes later; it does not change the tensors)
  const halfSd: StateDict = readSafetensors(writeSafetensors(loaded.stateDict, undefined, { half: true })).tensors;

  const data = await openDataset(args.data, { log: (m) => process.stderr.write(`${m}\n`) });
  const { images, labels, n } = testSubset(data.test, args.limit);
  const backend = useBackend();
  const half = InferenceGraph.fromStateDict(halfSd, backend);
  const full = InferenceGraph.fromStateDict(loaded.stateDict, backend);
  const r = evaluate(half, full, images, labels, n, args.batch, spec.numClasses);
  half.dispose();
  full.dispose();

  const fileSha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
  const accs = { flip: r.flip.correct / n, 'flip-shift': r.flipShift.correct / n };
  const ttaMode = accs['flip-shift'] >= accs.flip ? 'flip-shift' : 'flip';
  const metadata: Record<string, string> = {
    format: 'pt', producer: 'resnet-ts scripts/model-card.ts', model: JSON.stringify(spec),
    test_accuracy: String(r.f16.correct / n), test_accuracy_tta: String(accs[ttaMode]), tta_mode: ttaMode,
    test_accuracy_tta_flip: String(accs.flip), test_accuracy_tta_flip_shift: String(accs['flip-shift']), test_images: String(n),
    source: `${path.basename(runDir)}/${path.basename(ckpt)}`, epoch: String(ckptEpoch), recipe: String((info.config as Record<string, unknown> | undefined)?.recipe),
  };
  const bytes = writeSafetensors(loaded.stateDict, metadata, { half: true });
  fs.mkdirSync(args.outDir, { recursive: true });
  const weightsFile = path.join(args.outDir, path.basename(PACKAGED_WEIGHTS));
  fs.writeFileSync(weightsFile, bytes);
  const params = [...loaded.stateDict].filter(([k]) => !/running_|num_batches/.test(k)).reduce((s, [, t]) => s + t.data.length, 0);
  const text = card({
    info, runDir, ckpt, ckptEpoch, epochs: epochRecords(runDir), r, classes: data.classes, dataPath: args.data,
    dataSha: fs.statSync(args.data).isFile() ? fileSha(fs.readFileSync(args.data)) : '(a folder)', limit: args.limit, fileBytes: bytes.length, fileSha: fileSha(bytes), params, notes: loaded.notes, load,
  });
  fs.writeFileSync(path.join(args.outDir, 'MODEL_CARD.md'), text);
  process.stdout.write(`wrote ${weightsFile} (${(bytes.length / 1e6).toFixed(1)} MB) and ${path.join(args.outDir, 'MODEL_CARD.md')}: ` +
    `${pct(r.f16.correct, n)}, TTA flip ${pct(r.flip.correct, n)}, flip-shift ${pct(r.flipShift.correct, n)} on ${n} test images\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`model-card: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
