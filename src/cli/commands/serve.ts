/**
 * `resnet serve --weights W [--host 127.0.0.1] [--port 8080] [--run RUN_DIR]`: the classifier as a local web
 * page with a JSON API, and with --run a dashboard of a training run's curves.
 *
 * What it is: option parsing, startup messages and signal handling over src/serve/server.ts, which runs the
 * model in an inference process of its own with dynamic batching (--max-batch, --batch-delay).
 * A model that cannot be loaded stops the command before it listens. SIGINT/SIGTERM stop
 * accepting, let in-flight requests finish (at most 10 s; those left then get 503 JSON) and exit 0.
 */
import * as fs from 'node:fs';
import { Command, Option } from 'commander';
import { precisionOption } from '../precision';
import { intInRange } from '../parse';
import { RAW_WEIGHTS_FLAG, RAW_WEIGHTS_HELP, resolveWeights } from '../defaults';
import { checkTtaMode } from '../../data/tta';
import { DEFAULT_BATCH_DELAY_MS, DEFAULT_MAX_BATCH, batchSizes } from '../../serve/batcher';
import { isLoopbackHost } from '../../serve/guard';
import { DEFAULT_MAX_CONCURRENT, RunningServer, startServer } from '../../serve/server';

export interface ServeCliOptions {
  readonly weights: string;
  readonly host: string;
  readonly port: number;
  readonly run?: string;
  readonly maxConcurrent: number;
  /** uploads in progress at once, and from one client address (server defaults: 16 and half of that) */
  readonly maxUploads?: number;
  readonly maxUploadsPerClient?: number;
  /** dynamic batching: the most requests per forward pass, and how long one waits for others (ms) */
  readonly maxBatch?: number;
  readonly batchDelay?: number;
  /** test-time augmentation: off | flip | flip-shift (default off) */
  readonly tta?: string;
  readonly allowHost: string[];
  readonly backend?: string;
  /** fp32 | bf16 | auto (default fp32) */
  readonly precision?: string;
  /** a checkpoint with a moving average of the weights: serve its raw weights instead */
  readonly rawWeights?: boolean;
  readonly quiet?: boolean;
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

/** Loads the model and starts listening; resolves once the server is up. */
export async function runServe(o: ServeCliOptions, log: (line: string) => void): Promise<RunningServer> {
  if (o.run !== undefined && !fs.statSync(o.run, { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`serve --run: expected a run folder, received ${JSON.stringify(o.run)} (no such folder)`);
  }
  const tta = checkTtaMode(o.tta ?? 'off');
  let running: RunningServer;
  try {
    // the inference process loads the model before the server listens: weights that cannot load stop the command here
    running = await startServer({
      model: { weights: o.weights, backend: o.backend, precision: o.precision, tta, ema: !o.rawWeights },
      host: o.host,
      port: o.port,
      runDir: o.run,
      maxConcurrent: o.maxConcurrent,
      maxUploads: o.maxUploads,
      maxUploadsPerClient: o.maxUploadsPerClient,
      maxBatch: o.maxBatch,
      batchDelayMs: o.batchDelay,
      warmup: true,
      allowHosts: o.allowHost,
      log: o.quiet ? undefined : log,
    });
  } catch (err) {
    throw listenError(err, o.host, o.port);
  }
  if (!isLoopbackHost(o.host)) {
    log(`warning: listening on ${o.host}, reachable from other machines; the server has no authentication`);
  }
  const info = running.engine.info;
  log(`model: resnet18, width ${info.spec.width}, ${info.numClasses} classes, ${info.weights.format} weights from ${info.weights.path}, ${info.backend} backend, ${info.precision}, tta ${info.tta}`);
  const sizes = batchSizes(o.maxBatch ?? DEFAULT_MAX_BATCH).join(', ');
  log(`inference: a process of its own, batches of up to ${o.maxBatch ?? DEFAULT_MAX_BATCH} requests gathered for up to ${o.batchDelay ?? DEFAULT_BATCH_DELAY_MS} ms (padded to ${sizes}; each warmed up)`);
  if (o.run !== undefined) log(`dashboard: ${running.url}/dashboard (run ${o.run})`);
  return running;
}

/** A failed listen in words: which address and port, and what to do (instead of `listen EADDRINUSE ...`). */
function listenError(err: unknown, host: string, port: number): Error {
  const code = (err as NodeJS.ErrnoException).code;
  const where = `${host}:${port}`;
  const words: Record<string, string> = {
    EADDRINUSE: `port ${port} on ${host} is already in use (another server, or a resnet serve still running); ` +
      'stop it, or choose another --port (--port 0 picks a free one)',
    EACCES: `not allowed to listen on ${where} (ports below 1024 need extra privileges); choose another --port, e.g. 8080`,
    EADDRNOTAVAIL: `${host} is not an address of this machine; use --host 127.0.0.1 (this machine only) or one of its addresses`,
  };
  const why = code !== undefined ? words[code] : undefined;
  return why === undefined ? (err as Error) : new Error(`serve: ${why}`, { cause: err });
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve the classifier as a local web page and JSON API (and a training dashboard with --run)')
    .option('--weights <path>', 'checkpoint (.ckpt), run folder, .safetensors or .pth (default: the packaged ResNet-18)')
    .option(RAW_WEIGHTS_FLAG, RAW_WEIGHTS_HELP)
    .option('--host <addr>', 'address to bind (anything but loopback exposes the server to the network)', '127.0.0.1')
    .option('--port <n>', 'port (0 picks a free one)', intInRange(0, 65535), 8080)
    .option('--run <dir>', 'a training run folder whose metrics.jsonl the dashboard draws')
    .option('--max-concurrent <n>', 'inferences in flight (decoding, waiting for a batch, in the forward pass); more get 503', intInRange(1, 1024), DEFAULT_MAX_CONCURRENT)
    .option('--max-uploads <n>', 'uploads in progress at once; more get 503 (default: 16)', intInRange(1, 1024))
    .option('--max-uploads-per-client <n>', 'uploads in progress from one client address; more get 429 (default: half of --max-uploads)', intInRange(1, 1024))
    .option('--max-batch <n>', 'dynamic batching: the most requests classified in one forward pass (1: no batching)', intInRange(1, 1024), DEFAULT_MAX_BATCH)
    .option('--batch-delay <ms>', 'dynamic batching: how long a request waits for others to share its forward pass', intInRange(0, 1000), DEFAULT_BATCH_DELAY_MS)
    .addOption(new Option('--tta <mode>', 'test-time augmentation: the mean of the softmax over views of each image').choices(['off', 'flip', 'flip-shift']).default('off'))
    .option('--allow-host <name>', 'also accept this Host name (repeatable; IP addresses and localhost always are)', collect, [])
    .option('--quiet', 'no request log', false)
    .addOption(precisionOption('fp32'))
    .action(async (o: Omit<ServeCliOptions, 'backend' | 'weights'> & { weights?: string }) => {
      const log = (line: string): void => void process.stderr.write(`resnet serve: ${line}\n`);
      const running = await runServe({ ...o, weights: resolveWeights(o.weights), backend: program.opts().backend as string | undefined }, log);
      // the one line on stdout, for people and for scripts that wait for the server
      process.stdout.write(`listening on ${running.url}\n`);
      await new Promise<void>((resolve) => {
        const stop = (sig: string): void => {
          log(`${sig}: finishing in-flight requests, then exiting`);
          running.close(10_000).then(resolve, resolve);
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    });
}
