/**
 * `resnet export --weights W --format onnx|safetensors|pth --out FILE [--opset N]`: writes trained weights in a
 * format other tools read:
 *  - onnx: the whole model, opset 13 by default, input `input` [N,3,32,32] (normalized), output `logits` [N,classes];
 *  - safetensors: the state dict with the seed's key names (Hugging Face's format);
 *  - pth: the state dict in torch.save's zip format; `ResNet18().load_state_dict(torch.load(FILE))` reads it.
 * W is anything `--weights` takes elsewhere (.ckpt, run folder, .pth, .safetensors). Without --format, the
 * extension of --out decides.
 *
 * What it is: option parsing and messages over src/interop (loadWeights, exportOnnx, writePth,
 * writeSafetensors); the weights are checked against the seed's structure before anything is written.
 * What it is not: a converter of other architectures.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { intInRange } from '../parse';
import { loadWeights } from '../../interop/weights';
import { ONNX_DEFAULT_OPSET, seedStateDictProblems, writeOnnxFile } from '../../interop/onnx';
import { writePthFile } from '../../interop/pth-write';
import { writeSafetensorsFile } from '../../interop/safetensors';

export type ExportFormat = 'onnx' | 'safetensors' | 'pth';
const FORMATS: readonly ExportFormat[] = ['onnx', 'safetensors', 'pth'];
const EXTENSIONS: Record<string, ExportFormat> = { '.onnx': 'onnx', '.safetensors': 'safetensors', '.pth': 'pth', '.pt': 'pth' };

export interface ExportOptions {
  readonly weights: string;
  readonly out: string;
  /** default: from the extension of `out` */
  readonly format?: ExportFormat;
  /** ONNX opset (13..21), default 13 */
  readonly opset?: number;
}

export interface ExportResult {
  readonly out: string;
  readonly format: ExportFormat;
  readonly bytes: number;
  /** what loadWeights did on the way (prefix removed, dtype converted, ...) */
  readonly notes: readonly string[];
}

function formatOf(opts: ExportOptions): ExportFormat {
  if (opts.format !== undefined) return opts.format;
  const byExt = EXTENSIONS[path.extname(opts.out).toLowerCase()];
  if (byExt === undefined) {
    throw new Error(`resnet export: expected --format ${FORMATS.join('|')} or an --out ending in ` +
      `${Object.keys(EXTENSIONS).join(', ')}, received --out ${opts.out}`);
  }
  return byExt;
}

/** Reads the weights, checks them against the seed's ResNet-18 and writes them in the chosen format. */
export async function runExport(opts: ExportOptions): Promise<ExportResult> {
  const format = formatOf(opts);
  const loaded = await loadWeights(opts.weights);
  const problems = seedStateDictProblems(loaded.stateDict);
  if (problems.length > 0) {
    throw new Error(`resnet export: ${loaded.path} is not the seed's ResNet-18: ${problems.join('; ')}`);
  }
  fs.mkdirSync(path.dirname(path.resolve(opts.out)), { recursive: true });
  if (format === 'onnx') {
    writeOnnxFile(opts.out, loaded.stateDict, { opset: opts.opset ?? ONNX_DEFAULT_OPSET, metadata: { source: path.basename(loaded.path) } });
  } else if (format === 'safetensors') {
    writeSafetensorsFile(opts.out, loaded.stateDict, { format: 'pt', producer: 'resnet-ts' });
  } else {
    writePthFile(opts.out, loaded.stateDict);
  }
  return { out: opts.out, format, bytes: fs.statSync(opts.out).size, notes: loaded.notes };
}

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('write weights as ONNX (the whole model), safetensors or a PyTorch .pth state dict')
    .requiredOption('--weights <path>', 'checkpoint (.ckpt), run folder, .safetensors or .pth')
    .requiredOption('--out <file>', 'the file to write')
    .addOption(new Option('--format <format>', 'output format (default: from the --out extension)').choices([...FORMATS]))
    .option('--opset <n>', 'ONNX opset, 13 to 21', intInRange(13, 21), ONNX_DEFAULT_OPSET)
    .action(async (o: { weights: string; out: string; format?: ExportFormat; opset: number }) => {
      const r = await runExport(o);
      for (const note of r.notes) process.stderr.write(`resnet export: ${note}\n`);
      const mb = (r.bytes / 1e6).toFixed(1);
      process.stdout.write(`wrote ${r.out} (${r.format}${r.format === 'onnx' ? `, opset ${o.opset}` : ''}, ${mb} MB)\n`);
    });
}
