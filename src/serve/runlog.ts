/**
 * Reads a training run's `metrics.jsonl` for the dashboard, incrementally and tolerantly: the client asks for
 * the records after a byte offset and gets the complete lines since then plus the next offset. A line still
 * being written (no newline yet, the "torn" last line) is left for the next poll; a line that is not JSON,
 * or not an object, is skipped and counted.
 *
 * What it is not: the writer, nor the file's name and record (src/run/metrics.ts), nor a schema check: the charts
 * use `kind: 'step'` records' step, loss and `kind: 'epoch'` records' epoch, train_loss, train_acc, test_loss,
 * test_acc, lr; every JSON object passes through untouched.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { METRICS_FILE, type MetricsRecord } from '../run/metrics';

/** Most bytes returned per poll; the client asks again at once when `more` is true. */
export const MAX_CHUNK_BYTES = 4 * 1024 * 1024;

export interface MetricsChunk {
  /** parsed records, in file order: what the writer wrote, objects not checked further */
  readonly records: MetricsRecord[];
  /** the offset to ask from next time */
  readonly next: number;
  /** the file's size now (0 when it does not exist yet) */
  readonly size: number;
  /** true when the file is shorter than the offset asked for (a new run replaced it): start over from 0 */
  readonly reset: boolean;
  /** complete lines skipped because they were not JSON objects */
  readonly skipped: number;
  /** true when more complete data waits after `next` */
  readonly more: boolean;
}

export async function readMetricsChunk(runDir: string, from: number, maxBytes = MAX_CHUNK_BYTES): Promise<MetricsChunk> {
  if (!Number.isSafeInteger(from) || from < 0) {
    throw new Error(`readMetricsChunk: expected a non-negative integer offset, received ${from}`);
  }
  const file = path.join(runDir, METRICS_FILE);
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], next: 0, size: 0, reset: from > 0, skipped: 0, more: false };
    throw err;
  }
  try {
    const { size } = await fh.stat();
    if (from > size) return { records: [], next: 0, size, reset: true, skipped: 0, more: false };
    const want = Math.min(size - from, maxBytes);
    const buf = Buffer.alloc(want);
    const { bytesRead } = await fh.read(buf, 0, want, from);
    const lastNl = buf.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (lastNl < 0) {
      // no complete line: either still being written, or one line longer than maxBytes (skip it to move on)
      const stuck = bytesRead === maxBytes;
      return { records: [], next: stuck ? from + bytesRead : from, size, reset: false, skipped: stuck ? 1 : 0, more: stuck };
    }
    const { records, skipped } = parseLines(buf.subarray(0, lastNl).toString('utf8'));
    const next = from + lastNl + 1;
    return { records, next, size, reset: false, skipped, more: want === maxBytes && next < size };
  } finally {
    await fh.close();
  }
}

function parseLines(text: string): { records: MetricsRecord[]; skipped: number } {
  const records: MetricsRecord[] = [];
  let skipped = 0;
  for (const line of text.split('\n')) {
    const s = line.trim();
    if (s === '') continue;
    try {
      const v: unknown = JSON.parse(s);
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) records.push(v as MetricsRecord);
      else skipped++;
    } catch {
      skipped++;
    }
  }
  return { records, skipped };
}
