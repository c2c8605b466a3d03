/**
 * `resnet serve --weights W [--host 127.0.0.1] [--port 8080] [--run RUN_DIR]`: the classifier as a local web
 * page with a JSON API, and with --run a dashboard of a training run's curves.
 *
 * What it is: option parsing, startup messages and signal handling over src/serve/server.ts.
 * A model that cannot be loaded stops the command before it listens. SIGINT/SIGTERM stop
 * accepting, let in-flight requests finish (at most 10 s) and exit 0.
 */
import * as fs from 'node:fs';
import { Command } from 'commander';
import { precisionOption } from '../precision';
import { intInRange } from '../parse';
import { loadClassifier } from '../../predict/classifier';
import { isLoopbackHost } from '../../serve/guard';
import { RunningServer, startServer } from '../../serve/server';

export interface ServeCliOptions {
  readonly weights: string;
  readonly host: string;
  readonly port: number;
  readonly run?: string;
  readonly maxConcurrent: number;
  readonly allowHost: string[];
  readonly backend?: string;
  /** fp32 | bf16 | auto (default fp32) */
  readonly precision?: string;
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
  const classifier = await loadClassifier(o.weights, { backend: o.backend, precision: o.precision });
  let running: RunningServer;
  try {
    running = await startServer({
      classifier,
      host: o.host,
      port: o.port,
      runDir: o.run,
      maxConcurrent: o.maxConcurrent,
      allowHosts: o.allowHost,
      log: o.quiet ? undefined : log,
    });
  } catch (err) {
    throw listenError(err, o.host, o.port);
  }
  if (!isLoopbackHost(o.host)) {
    log(`warning: listening on ${o.host}, reachable from other machines; the server has no authentication`);
  }
  log(`model: resnet18, width ${classifier.info.spec.width}, ${classifier.info.numClasses} classes, ${classifier.info.weights.format} weights from ${classifier.info.weights.path}, ${classifier.info.backend} backend, ${classifier.info.precision}`);
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
    .requiredOption('--weights <path>', 'checkpoint (.ckpt), run folder, .safetensors or .pth')
    .option('--host <addr>', 'address to bind (anything but loopback exposes the server to the network)', '127.0.0.1')
    .option('--port <n>', 'port (0 picks a free one)', intInRange(0, 65535), 8080)
    .option('--run <dir>', 'a training run folder whose metrics.jsonl the dashboard draws')
    .option('--max-concurrent <n>', 'inferences at once; more get 503', intInRange(1, 64), 2)
    .option('--allow-host <name>', 'also accept this Host name (repeatable; IP addresses and localhost always are)', collect, [])
    .option('--quiet', 'no request log', false)
    .addOption(precisionOption('fp32'))
    .action(async (o: Omit<ServeCliOptions, 'backend'>) => {
      const log = (line: string): void => void process.stderr.write(`resnet serve: ${line}\n`);
      const running = await runServe({ ...o, backend: program.opts().backend as string | undefined }, log);
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
