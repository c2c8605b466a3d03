/**
 * `resnet predict FILE_OR_DIR... --weights W [--topk K] [--json] [--lang zh|en] [--batch-size N] [--tta MODE]`:
 * classify images from the command line; with no files, the seed's interactive loop (ask for a path, print the
 * result, repeat). --tta flip|flip-shift reports the mean softmax of 2 or 6 views of each image (src/data/tta.ts).
 *
 * What it is: option parsing and output over src/predict (the programmatic API the server uses too).
 * Text results go to stdout, one line per file; errors to stderr (in the interactive loop too). With --json, stdout
 * is one JSON array (one object per file, errors included), or one {weights, error} object when the weights cannot
 * be loaded. The exit code is 1 if the weights or any file failed. A long list on a terminal gets a progress bar on
 * stderr, kept below the results as they stream.
 */
import * as readline from 'node:readline';
import { Command, InvalidArgumentError, Option } from 'commander';
import { SingleBar } from 'cli-progress';
import { precisionOption } from '../precision';
import { intInRange } from '../parse';
import { RAW_WEIGHTS_FLAG, RAW_WEIGHTS_HELP, resolveWeights } from '../defaults';
import { loadClassifier, type Classifier } from '../../predict/classifier';
import { TTA_MODES, type TtaMode } from '../../data/tta';
import { DEFAULT_BATCH_SIZE, FileResult, Lang, formatResultText, predictPaths, resultToJson } from '../../predict/predict';
import { interactiveLoop } from '../../predict/interactive';

export interface PredictOptions {
  readonly weights: string;
  readonly topk: number;
  readonly json: boolean;
  readonly lang: Lang;
  readonly backend?: string;
  /** fp32 | bf16 | auto (default fp32) */
  readonly precision?: string;
  /** files per forward pass (default DEFAULT_BATCH_SIZE); 1 gives the server's numbers bit for bit */
  readonly batchSize?: number;
  /** test-time augmentation: off (default), flip or flip-shift */
  readonly tta?: TtaMode;
  /** a checkpoint with a moving average of the weights: classify with its raw weights instead */
  readonly rawWeights?: boolean;
}

export interface PredictIo {
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

/** Lists at least this long get a progress bar (when stderr is a terminal); shorter ones finish before it helps. */
export const PROGRESS_MIN_FILES = 200;

/**
 * The bar on stderr, or nothing. Output written while it shows first clears its line; the bar redraws itself
 * below on its next tick (forceRedraw), so results and errors scroll above it.
 */
class PredictProgress {
  private bar: SingleBar | null = null;
  private done = 0;
  private readonly t0 = performance.now();

  constructor(private readonly stderr: PredictIo['stderr']) {}

  start(total: number): void {
    if (!this.stderr.isTTY || process.env.CI || total < PROGRESS_MIN_FILES) return;
    this.bar = new SingleBar({
      format: 'predict [{bar}] {value}/{total} images | {rate} img/s | ETA {eta_formatted}',
      barsize: 30, hideCursor: true, clearOnComplete: true, forceRedraw: true, stream: this.stderr as NodeJS.WriteStream,
    });
    this.bar.start(total, 0, { rate: '-' });
  }

  write(stream: NodeJS.WritableStream, text: string): void {
    if (this.bar) {
      readline.cursorTo(this.stderr, 0);
      readline.clearLine(this.stderr, 0);
    }
    stream.write(text);
  }

  tick(): void {
    this.done++;
    this.bar?.update(this.done, { rate: (this.done / ((performance.now() - this.t0) / 1000)).toFixed(0) });
  }

  stop(): void {
    if (!this.bar) return;
    // stop() moves the cursor back to where start() saved it, above every result since: save this line instead
    this.stderr.write('\x1b7');
    this.bar.stop();
  }
}

/** Classifies the files, streaming text results (or collecting JSON) with a progress bar for long lists. */
async function predictFiles(classifier: Classifier, paths: readonly string[], opts: PredictOptions, io: PredictIo): Promise<FileResult[]> {
  const progress = new PredictProgress(io.stderr);
  const onResult = (r: FileResult): void => {
    if (!opts.json) { // with --json the array is written once, at the end
      if (r.error !== undefined) progress.write(io.stderr, `resnet predict: ${r.file}: ${r.error}\n`);
      else progress.write(io.stdout, `${formatResultText(r, opts)}\n`);
    }
    progress.tick();
  };
  try {
    return await predictPaths(classifier, paths, onResult, { batchSize: opts.batchSize, onPlan: (n) => progress.start(n) });
  } finally {
    progress.stop();
  }
}

function parseLang(v: string): Lang {
  if (v !== 'zh' && v !== 'en') throw new InvalidArgumentError(`expected zh or en, received ${JSON.stringify(v)}`);
  return v;
}

/**
 * Loads the classifier; with --json a failure is also one JSON object on stdout ({weights, error}), so that a
 * script reading stdout sees why there are no results. Resolves to null after a failure, already reported.
 */
async function loadOrReport(opts: PredictOptions, io: PredictIo): Promise<Classifier | null> {
  try {
    return await loadClassifier(opts.weights, { backend: opts.backend, precision: opts.precision, tta: opts.tta, ema: !opts.rawWeights });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (opts.json) io.stdout.write(`${JSON.stringify({ weights: opts.weights, error: message })}\n`);
    io.stderr.write(`resnet predict: ${message}\n`);
    return null;
  }
}

/** Runs `resnet predict`; resolves to the exit code (0, or 1 if the weights or any file failed). */
export async function runPredict(paths: readonly string[], opts: PredictOptions, io: PredictIo): Promise<number> {
  const classifier = await loadOrReport(opts, io);
  if (classifier === null) return 1;
  if (paths.length === 0) {
    const summary = await interactiveLoop(classifier, {
      input: io.stdin,
      output: io.stdout,
      errorOutput: io.stderr,
      promptOutput: io.stdin.isTTY ? io.stdout : io.stderr,
      lang: opts.lang,
      topk: opts.topk,
      json: opts.json,
    });
    return summary.failed > 0 ? 1 : 0;
  }
  const results = await predictFiles(classifier, paths, opts, io);
  if (opts.json) io.stdout.write(`${JSON.stringify(results.map(resultToJson), null, 2)}\n`);
  if (results.length === 0) {
    io.stderr.write(`resnet predict: no image files found in ${paths.join(', ')}\n`);
    return 1;
  }
  return results.some((r) => r.error !== undefined) ? 1 : 0;
}

export function registerPredict(program: Command): void {
  program
    .command('predict')
    .description('classify images (files or folders); with no files, ask for paths interactively')
    .argument('[paths...]', 'image files or folders (folders are walked in sorted order)')
    .option('--weights <path>', 'checkpoint (.ckpt), run folder, .safetensors or .pth (default: the packaged ResNet-18)')
    .option(RAW_WEIGHTS_FLAG, RAW_WEIGHTS_HELP)
    .option('--topk <k>', 'how many of the most probable classes to list', intInRange(1), 3)
    .option('--json', 'print a JSON array, one object per file', false)
    .option('--lang <zh|en>', 'language of the class names in text output', parseLang, 'zh' as Lang)
    .option('--batch-size <n>', 'images per forward pass over many files (1: the server\'s numbers bit for bit)', intInRange(1), DEFAULT_BATCH_SIZE)
    .addOption(precisionOption('fp32'))
    .addOption(new Option('--tta <mode>', 'test-time augmentation: off, flip (2 views) or flip-shift (6 views)').choices(TTA_MODES).default('off'))
    .action(async (paths: string[], o: { weights?: string; rawWeights?: boolean; topk: number; json: boolean; lang: Lang; precision: string; batchSize: number; tta: TtaMode }) => {
      const backend = program.opts().backend as string | undefined;
      const code = await runPredict(paths, { ...o, weights: resolveWeights(o.weights), backend }, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
      if (code !== 0) process.exitCode = code;
    });
}
