/**
 * A plain-object summary of an opened dataset (counts per class and split, image sizes, bad files, cache), for
 * `resnet data --json`, its text table, and logs of other commands. No I/O.
 */
import type { CifarData, Split } from './types';

export interface DatasetSummary {
  source: CifarData['source'];
  classes: string[];
  /** images per class name */
  counts: { train: Record<string, number>; test: Record<string, number> };
  total: { train: number; test: number };
  /** original sizes and their counts; every stored image is 32x32 RGB */
  sizes: Record<string, number>;
  resized: number;
  badFiles: CifarData['badFiles'];
  notes: string[];
  cache: CifarData['cache'];
  fingerprint: string;
}

function perClass(s: Split, classes: string[]): Record<string, number> {
  const c = new Array<number>(classes.length).fill(0);
  for (let i = 0; i < s.n; i++) c[s.labels[i]]++;
  return Object.fromEntries(classes.map((name, i) => [name, c[i]]));
}

export function summarizeDataset(d: CifarData): DatasetSummary {
  return {
    source: d.source,
    classes: d.classes,
    counts: { train: perClass(d.train, d.classes), test: perClass(d.test, d.classes) },
    total: { train: d.train.n, test: d.test.n },
    sizes: d.sizes,
    resized: d.resized,
    badFiles: d.badFiles,
    notes: d.notes,
    cache: d.cache,
    fingerprint: d.fingerprint,
  };
}

const SHOWN_BAD = 20;

/** The summary as the text `resnet data` prints (the first 20 bad files; --json has them all). */
export function formatSummary(s: DatasetSummary): string {
  const w = Math.max(5, ...s.classes.map((c) => c.length));
  const row = (name: string, a: number | string, b: number | string): string => `  ${name.padEnd(w)} ${String(a).padStart(7)} ${String(b).padStart(7)}`;
  const lines = [
    `source  ${s.source.path} (${s.source.kind}${s.source.root ? `, root ${s.source.root}` : ''})`,
    `classes ${s.classes.length}`,
    row('class', 'train', 'test'),
    ...s.classes.map((c) => row(c, s.counts.train[c], s.counts.test[c])),
    row('total', s.total.train, s.total.test),
    `images  ${Object.entries(s.sizes).map(([k, v]) => `${k}: ${v}`).join(', ') || 'none'}; stored as 32x32 RGB${s.resized ? ` (${s.resized} resized)` : ''}`,
    `bad     ${s.badFiles.length} files skipped`,
    ...s.badFiles.slice(0, SHOWN_BAD).map((b) => `  ${b.path}: ${b.reason}`),
    ...(s.badFiles.length > SHOWN_BAD ? [`  ... and ${s.badFiles.length - SHOWN_BAD} more (--json lists all)`] : []),
    ...s.notes.map((n) => `note    ${n}`),
    `cache   ${s.cache.status}${s.cache.path ? ` ${s.cache.path}` : ''} (${(s.cache.ms / 1000).toFixed(2)} s)`,
  ];
  return `${lines.join('\n')}\n`;
}
