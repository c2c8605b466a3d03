/**
 * The `resnet` command line: a thin layer over the public API (src/index.ts). Each subcommand lives in
 * src/cli/commands/<name>.ts and registers itself on the commander program; this file only assembles them
 * and turns thrown errors into one readable line and an exit code.
 */
import { Command, CommanderError } from 'commander';
import { registerBench } from './commands/bench';
import { registerData } from './commands/data';
import { registerTrain } from './commands/train';
import { registerEval } from './commands/eval';
import { registerPredict } from './commands/predict';
import { registerServe } from './commands/serve';
import { registerExport } from './commands/export';
import { setOpenMpProfile, type OpenMpProfile } from '../backend/native';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('resnet')
    .description('Train, evaluate and deploy CIFAR-10 ResNet-18 classifiers (oneDNN CPU engine)')
    .option('--backend <name>', 'compute backend: native (oneDNN) or reference (plain TypeScript)', process.env.RESNET_BACKEND)
    .showHelpAfterError()
    .exitOverride();
  registerTrain(program);
  registerEval(program);
  registerPredict(program);
  registerServe(program);
  registerData(program);
  registerExport(program);
  registerBench(program);
  return program;
}

/** Subcommands whose work is single images on demand: they run OpenMP in its latency profile (binding.ts). */
const LATENCY_COMMANDS = new Set(['predict', 'serve']);

/** The OpenMP profile a command line runs in (argv as process.argv: node, script, arguments). */
export function openMpProfileFor(argv: readonly string[]): OpenMpProfile {
  const args = argv.slice(2);
  const sub = args.find((a, i) => !a.startsWith('-') && args[i - 1] !== '--backend');
  const latency = sub !== undefined && (LATENCY_COMMANDS.has(sub) || (sub === 'bench' && args.includes('--latency-only')));
  return latency ? 'latency' : 'throughput';
}

/** Runs the CLI; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  setOpenMpProfile(openMpProfileFor(argv));
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version are "errors" with exit code 0 in commander's exitOverride mode
      return err.exitCode;
    }
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`resnet: ${msg}\n`);
    if (process.env.RESNET_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}
