/**
 * The seed's interactive loop: ask for an image path (请输入检测图片的名称), print the class and its
 * probability, ask again, until end of input (Ctrl-D, or the end of a pipe).
 *
 * What it is not: a shell. A line is one path; surrounding quotes (what a terminal adds when a file is
 * dragged into it) are removed, nothing else is interpreted. Empty lines are skipped.
 */
import * as readline from 'node:readline';
import type { Classifier } from './classifier';
import { FileResult, Lang, formatResultText, predictFile, resultToJson } from './predict';

export const PROMPT_ZH = '请输入检测图片的名称 (image path): ';

export interface InteractiveOptions {
  readonly input: NodeJS.ReadableStream;
  /** where results go */
  readonly output: NodeJS.WritableStream;
  /** where a failed file's error goes in text mode, as `resnet predict FILES` does (JSON mode keeps it in its line) */
  readonly errorOutput: NodeJS.WritableStream;
  /** where the prompt goes (stdout on a terminal; stderr when piped, so that stdout holds only results) */
  readonly promptOutput: NodeJS.WritableStream;
  readonly lang: Lang;
  readonly topk: number;
  /** print one JSON object per line instead of text */
  readonly json: boolean;
}

export interface InteractiveSummary {
  readonly ok: number;
  readonly failed: number;
}

/** Removes one pair of matching surrounding quotes, as terminals add around dragged-in paths. */
export function unquotePath(line: string): string {
  const s = line.trim();
  if (s.length >= 2 && (s[0] === '"' || s[0] === "'") && s[s.length - 1] === s[0]) return s.slice(1, -1);
  return s;
}

export async function interactiveLoop(classifier: Classifier, opts: InteractiveOptions): Promise<InteractiveSummary> {
  const rl = readline.createInterface({ input: opts.input, terminal: false, crlfDelay: Infinity });
  let ok = 0;
  let failed = 0;
  opts.promptOutput.write(PROMPT_ZH);
  for await (const line of rl) {
    const file = unquotePath(line);
    if (file !== '') {
      const r: FileResult = await predictFile(classifier, file);
      if (r.error !== undefined) failed++;
      else ok++;
      if (opts.json) opts.output.write(`${JSON.stringify(resultToJson(r))}\n`);
      else if (r.error !== undefined) opts.errorOutput.write(`resnet predict: ${r.file}: ${r.error}\n`);
      else opts.output.write(`${formatResultText(r, opts)}\n`);
    }
    opts.promptOutput.write(PROMPT_ZH);
  }
  opts.promptOutput.write('\n');
  return { ok, failed };
}
