/**
 * RUN/metrics.jsonl: one JSON object per line, appended as training goes (step and epoch records, plus a resume
 * marker when a run restarts from a checkpoint). Easy to read with jq, pandas or a spreadsheet; TensorBoard gets
 * the same numbers through tensorboard.ts.
 *
 * Each line is {"kind", "time", "epoch"?, "step", ...values}. NaN and ±Infinity, which JSON cannot hold, are
 * written as the strings "NaN", "Infinity", "-Infinity" and read back as numbers.
 * Durability: each record is one write(2) to an O_APPEND file (it survives a kill of the process); epoch records
 * are also fsynced (they survive a power loss). A line torn by a kill is cut off when the log is reopened.
 * What it is not: a database or a second source of truth for resuming (checkpoints are).
 * Flushed at the end of each epoch and at shutdown. References: JSON Lines (jsonlines.org).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const METRICS_FILE = 'metrics.jsonl';

/**
 * The one record type of metrics.jsonl: MetricsLog writes it, readMetrics and serve/runlog.ts (the dashboard's
 * reader) return it, and web/dashboard.js tells records apart by the same field, `kind`.
 */
export interface MetricsRecord {
  kind: 'step' | 'epoch' | 'resume';
  time: string;
  epoch?: number;
  step: number;
  [name: string]: number | string | undefined;
}

const RESERVED = new Set(['kind', 'time', 'epoch', 'step']);

function encodeNumber(v: number): number | string {
  return Number.isFinite(v) ? v : String(v);
}

/** Cuts a torn last line (no trailing newline) left by a killed writer; returns what was cut. */
function cutTornTail(file: string): string {
  if (!fs.existsSync(file)) return '';
  const buf = fs.readFileSync(file);
  if (buf.length === 0 || buf[buf.length - 1] === 0x0a) return '';
  const keep = buf.lastIndexOf(0x0a) + 1;
  fs.truncateSync(file, keep);
  return buf.subarray(keep).toString('utf8');
}

export class MetricsLog {
  readonly path: string;
  private fd: number | null;
  private failed = false;
  private readonly warn: (m: string) => void;

  private constructor(file: string, warn: (m: string) => void) {
    this.path = file;
    this.warn = warn;
    const torn = cutTornTail(file);
    if (torn) warn(`metrics: cut a torn last line from ${file}: ${JSON.stringify(torn.slice(0, 80))}`);
    this.fd = fs.openSync(file, 'a');
  }

  /** Opens (or creates) RUN/metrics.jsonl for appending. */
  static open(runDir: string, opts: { onWarning?: (m: string) => void } = {}): MetricsLog {
    fs.mkdirSync(runDir, { recursive: true });
    return new MetricsLog(path.join(runDir, METRICS_FILE), opts.onWarning ?? ((m) => console.warn(m)));
  }

  logStep(step: number, values: Record<string, number>, epoch?: number): void {
    this.append('step', step, epoch, values, false);
  }

  /** An epoch's summary (train/val loss and accuracy, lr, time...); fsynced. */
  logEpoch(epoch: number, step: number, values: Record<string, number>): void {
    this.append('epoch', step, epoch, values, true);
  }

  /** Marks a restart: records after this one with step >= `step` replace earlier ones. */
  logResume(epoch: number, step: number, values: Record<string, number> = {}): void {
    this.append('resume', step, epoch, values, true);
  }

  close(): void {
    if (this.fd === null) return;
    fs.closeSync(this.fd);
    this.fd = null;
  }

  private append(
    kind: MetricsRecord['kind'],
    step: number,
    epoch: number | undefined,
    values: Record<string, number>,
    sync: boolean,
  ): void {
    const op = `MetricsLog.log${kind[0].toUpperCase()}${kind.slice(1)}`;
    if (this.fd === null) throw new Error(`${op}: ${this.path} is closed`);
    if (!Number.isSafeInteger(step) || step < 0) {
      throw new Error(`${op}: expected step a non-negative integer, received ${step}`);
    }
    const rec: Record<string, unknown> = { kind, time: new Date().toISOString() };
    if (epoch !== undefined) rec.epoch = epoch;
    rec.step = step;
    for (const [k, v] of Object.entries(values)) {
      if (RESERVED.has(k)) throw new Error(`${op}: value name "${k}" is reserved (kind, time, epoch, step)`);
      if (typeof v !== 'number') throw new Error(`${op}: expected ${k} a number, received ${typeof v}`);
      rec[k] = encodeNumber(v);
    }
    this.write(Buffer.from(JSON.stringify(rec) + '\n', 'utf8'), sync);
  }

  /** I/O errors (disk full...) warn once and stop the log; training goes on. */
  private write(line: Buffer, sync: boolean): void {
    if (this.failed || this.fd === null) return;
    try {
      fs.writeSync(this.fd, line);
      if (sync) fs.fsyncSync(this.fd);
    } catch (err) {
      this.failed = true;
      this.warn(`metrics: writing ${this.path} failed (${(err as Error).message}); no more metrics are written to it`);
    }
  }
}

const NON_FINITE: Record<string, number> = {
  NaN: Number.NaN,
  Infinity: Number.POSITIVE_INFINITY,
  '-Infinity': Number.NEGATIVE_INFINITY,
};

/**
 * Reads a metrics file. A torn last line (a writer killed mid-line) is skipped; a bad line anywhere else is an
 * error naming the file and the line number.
 */
export function readMetrics(file: string): MetricsRecord[] {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const out: MetricsRecord[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() === '') continue;
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(lines[i]) as Record<string, unknown>;
    } catch (err) {
      if (i === lines.length - 1) break; // the last piece had no newline: torn by a kill
      throw new Error(`readMetrics ${file}: line ${i + 1} is not JSON (${(err as Error).message})`, { cause: err });
    }
    for (const [k, v] of Object.entries(rec)) {
      if (k !== 'kind' && typeof v === 'string' && v in NON_FINITE) rec[k] = NON_FINITE[v];
    }
    out.push(rec as MetricsRecord);
  }
  return out;
}
