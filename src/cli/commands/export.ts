/**
 * `resnet export [--weights W] --format onnx|safetensors|pth --out FILE [--opset N] [--dtype f32|f16]`: writes
 * trained weights in a format other tools read:
 *  - onnx: the whole model of the weights' spec (any width and class count), opset 13 by default, input `input`
 *    [N,3,32,32] (normalized), output `logits` [N,classes], the spec in the metadata (`model`);
 *  - safetensors: the state dict with the seed's key names (Hugging Face's format); with --dtype f16 the
 *    floating-point tensors in half precision (F16, rounded to nearest even: half the size), int64 ones as they are;
 *  - pth: the state dict in torch.save's zip format; `ResNet18().load_state_dict(torch.load(FILE))` reads it.
 * W is anything `--weights` takes elsewhere (.ckpt, run folder, .pth, .safetensors), by default the packaged
 * weights (src/cli/defaults.ts). Without --format, the
 * extension of --out decides; an extension of another format than --format is refused (a pth in `m.onnx` misleads
 * every tool after it). An existing --out is replaced only with --force, a folder never.
 *
 * What it is: option parsing and messages over src/interop (loadWeights, exportOnnx, writePth,
 * writeSafetensors); the weights and --out are checked before anything is written, and the file is written
 * atomically (a temp file removed on any failure, so a failed export leaves nothing behind).
 * What it is not: a converter of other architectures.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, Option } from 'commander';
import type { StateDict } from '../../tensor/host';
import { intInRange } from '../parse';
import { loadWeights } from '../../interop/weights';
import { specForWeights, type ModelSpec } from '../../models';
import { ONNX_DEFAULT_OPSET, exportOnnx, seedStateDictProblems } from '../../interop/onnx';
import { writePth } from '../../interop/pth-write';
import { writeSafetensors } from '../../interop/safetensors';
import { fsErrorWords, writeFileAtomic } from '../../run/atomic';
import { RAW_WEIGHTS_FLAG, RAW_WEIGHTS_HELP, resolveWeights } from '../defaults';

export type ExportFormat = 'onnx' | 'safetensors' | 'pth';
const FORMATS: readonly ExportFormat[] = ['onnx', 'safetensors', 'pth'];
const EXTENSIONS: Record<string, ExportFormat> = { '.onnx': 'onnx', '.safetensors': 'safetensors', '.pth': 'pth', '.pt': 'pth' };
export type ExportDType = 'f32' | 'f16';
const DTYPES: readonly ExportDType[] = ['f32', 'f16'];

export interface ExportOptions {
  readonly weights: string;
  readonly out: string;
  /** default: from the extension of `out` */
  readonly format?: ExportFormat;
  /** ONNX opset (13..21), default 13 */
  readonly opset?: number;
  /** replace an existing file at `out` */
  readonly force?: boolean;
  /** the floating-point tensors' precision, f32 (default) or f16 (safetensors only) */
  readonly dtype?: ExportDType;
  /** a checkpoint with a moving average of the weights: export its raw weights instead */
  readonly rawWeights?: boolean;
}

export interface ExportResult {
  readonly out: string;
  readonly format: ExportFormat;
  readonly bytes: number;
  /** what loadWeights did on the way (prefix removed, dtype converted, ...) */
  readonly notes: readonly string[];
}

function formatOf(opts: ExportOptions): ExportFormat {
  const ext = path.extname(opts.out).toLowerCase();
  const byExt = EXTENSIONS[ext];
  if (opts.format !== undefined) {
    if (byExt !== undefined && byExt !== opts.format) {
      throw new Error(`export: --out ${opts.out} ends in ${ext}, a ${byExt} file, but --format is ${opts.format}; ` +
        `name the file for its format (e.g. ${opts.out.slice(0, -ext.length)}${extensionOf(opts.format)}) or drop --format`);
    }
    return opts.format;
  }
  if (byExt === undefined) {
    throw new Error(`export: expected --format ${FORMATS.join('|')} or an --out ending in ` +
      `${Object.keys(EXTENSIONS).join(', ')}, received --out ${opts.out}`);
  }
  return byExt;
}

function extensionOf(format: ExportFormat): string {
  return format === 'pth' ? '.pth' : `.${format}`;
}

/** Refuses an --out that is a folder, or an existing file without --force, before anything is read or written. */
function checkOut(opts: ExportOptions, format: ExportFormat): void {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(opts.out, { throwIfNoEntry: false });
  } catch (err) {
    throw writeError(opts.out, err);
  }
  if (st?.isDirectory()) {
    throw new Error(`export: --out ${opts.out} is a folder; expected the path of the file to write, e.g. ` +
      `${path.join(opts.out, `model${extensionOf(format)}`)}`);
  }
  if (st !== undefined && !opts.force) {
    throw new Error(`export: ${opts.out} already exists; add --force to replace it, or choose another --out`);
  }
}

function encode(format: ExportFormat, sd: StateDict, spec: ModelSpec, opts: ExportOptions, source: string): Uint8Array {
  if (format === 'onnx') {
    const metadata = { source: path.basename(source), model: JSON.stringify(spec) };
    return exportOnnx(sd, { opset: opts.opset ?? ONNX_DEFAULT_OPSET, spec, metadata });
  }
  if (format === 'safetensors') return writeSafetensors(sd, { format: 'pt', producer: 'resnet-ts' }, { half: opts.dtype === 'f16' });
  return writePth(sd);
}

/** Writes `bytes` to `out` atomically; a failure says why in words, and leaves neither `out` changed nor a temp file. */
function writeOut(out: string, bytes: Uint8Array): void {
  try {
    fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
    writeFileAtomic(out, bytes);
  } catch (err) {
    throw writeError(out, err);
  }
}

function writeError(out: string, err: unknown): Error {
  return new Error(`export: cannot write ${out}: ${fsErrorWords(err)}; nothing was written`, { cause: err });
}

/** Reads the weights, checks them against the seed's ResNet-18 and writes them in the chosen format. */
export async function runExport(opts: ExportOptions): Promise<ExportResult> {
  const format = formatOf(opts);
  if (opts.dtype === 'f16' && format !== 'safetensors') {
    throw new Error(`export: --dtype f16 is for safetensors only (received --format ${format}); drop --dtype, or write a .safetensors file`);
  }
  checkOut(opts, format);
  const loaded = await loadWeights(opts.weights, { ema: !opts.rawWeights });
  const problems = seedStateDictProblems(loaded.stateDict);
  if (problems.length > 0) {
    throw new Error(`export: ${loaded.path} is not the seed's ResNet-18: ${problems.join('; ')}`);
  }
  // a checkpoint's recorded spec must agree with its shapes; other files get theirs inferred
  const spec = specForWeights(loaded.stateDict, loaded.spec, `export: ${loaded.path}`);
  const bytes = encode(format, loaded.stateDict, spec, opts, loaded.path);
  writeOut(opts.out, bytes);
  return { out: opts.out, format, bytes: bytes.length, notes: loaded.notes };
}

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('write weights as ONNX (the whole model), safetensors or a PyTorch .pth state dict')
    .option('--weights <path>', 'checkpoint (.ckpt), run folder, .safetensors or .pth (default: the packaged ResNet-18)')
    .option(RAW_WEIGHTS_FLAG, RAW_WEIGHTS_HELP)
    .requiredOption('--out <file>', 'the file to write')
    .addOption(new Option('--format <format>', 'output format (default: from the --out extension)').choices([...FORMATS]))
    .option('--opset <n>', 'ONNX opset, 13 to 21', intInRange(13, 21), ONNX_DEFAULT_OPSET)
    .option('--force', 'replace --out if it exists')
    .addOption(new Option('--dtype <dtype>', 'precision of the floating-point tensors; f16 (half the size) for safetensors only').choices([...DTYPES]).default('f32'))
    .action(async (o: { weights?: string; rawWeights?: boolean; out: string; format?: ExportFormat; opset: number; force?: boolean; dtype: ExportDType }) => {
      const r = await runExport({ ...o, weights: resolveWeights(o.weights) });
      for (const note of r.notes) process.stderr.write(`resnet export: ${note}\n`);
      const mb = (r.bytes / 1e6).toFixed(1);
      const what = r.format === 'onnx' ? `, opset ${o.opset}` : r.format === 'safetensors' && o.dtype === 'f16' ? ', F16' : '';
      process.stdout.write(`wrote ${r.out} (${r.format}${what}, ${mb} MB)\n`);
    });
}
