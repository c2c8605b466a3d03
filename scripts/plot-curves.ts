/**
 * Draws the test-accuracy curves of training runs as one SVG, from their metrics.jsonl (the README's plot):
 *
 *   npx tsx scripts/plot-curves.ts --out docs/curves.svg "fast, seed 0=docs/runs/fast5-s0.metrics.jsonl" ...
 *
 * Left panel: test accuracy against epoch; right panel: against cumulative wall time (hours, the sum of the
 * epochs' "seconds"). A run's TTA accuracy (test_acc_tta), where logged, is drawn dashed in the same colour. Grey
 * lines mark the seed's 88.54% and the 94% goal. "LABEL=ema:FILE" plots the run's moving average of the weights
 * instead (ema_test_acc, ema_test_acc_tta): what a run with --ema delivers. Only epoch records are read ({"kind":"epoch", ...}); a run
 * resumed after an interruption logs each epoch once, so the curve is the run's whole history.
 */
import * as fs from 'node:fs';

export interface EpochPoint {
  epoch: number;
  acc: number;
  accTta?: number;
  hours: number;
}

export interface Series {
  label: string;
  points: EpochPoint[];
}

/** The epoch records of a metrics.jsonl as points (accuracies in [0, 1], cumulative hours); `ema`: the EMA's accuracies. */
export function readSeries(label: string, text: string, ema = false): Series {
  const acc = ema ? 'ema_test_acc' : 'test_acc', tta = `${acc}_tta`;
  const byEpoch = new Map<number, { acc: number; accTta?: number; seconds: number }>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as Record<string, unknown>;
    const a = r[acc], t = r[tta];
    if (r.kind !== 'epoch' || typeof a !== 'number') continue;
    byEpoch.set(r.epoch as number, { acc: a, accTta: typeof t === 'number' ? t : undefined, seconds: Number(r.seconds ?? 0) });
  }
  let hours = 0;
  const points = [...byEpoch.entries()].sort((a, b) => a[0] - b[0]).map(([epoch, v]) => {
    hours += v.seconds / 3600;
    return { epoch, acc: v.acc, accTta: v.accTta, hours };
  });
  return { label, points };
}

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
const MARKS = [{ acc: 0.8854, text: "seed's 88.54%" }, { acc: 0.94, text: '94%' }];

/** The SVG text of the two panels. */
export function plotSvg(series: Series[], title = 'CIFAR-10 test accuracy'): string {
  const W = 900;
  // the legend: three runs a row under the panels, then the TTA note on a line of its own
  const PER_ROW = 3;
  const rows = Math.ceil(series.length / PER_ROW);
  const tta = series.some((s) => s.points.some((p) => p.accTta !== undefined));
  const H = 362 + 18 * rows + (tta ? 18 : 0);
  const panelW = 380;
  const top = 50;
  const plotH = 260;
  const accs = series.flatMap((s) => s.points.flatMap((p) => [p.acc, p.accTta ?? p.acc]));
  const lo = Math.max(0, Math.floor((Math.min(0.8, ...accs) - 0.02) * 20) / 20);
  const hi = 1;
  const maxEpoch = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p.epoch)));
  const maxHours = Math.max(1e-3, ...series.flatMap((s) => s.points.map((p) => p.hours)));
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(title)}</text>`);
  const panels: { x0: number; key: 'epoch' | 'hours'; max: number; label: string }[] = [
    { x0: 60, key: 'epoch', max: maxEpoch, label: 'epoch' },
    { x0: 60 + panelW + 70, key: 'hours', max: maxHours, label: 'wall time (h)' },
  ];
  const y = (a: number) => top + plotH * (1 - (a - lo) / (hi - lo));
  for (const p of panels) {
    const x = (v: number) => p.x0 + (panelW * v) / p.max;
    out.push(`<rect x="${p.x0}" y="${top}" width="${panelW}" height="${plotH}" fill="none" stroke="#444"/>`);
    for (let a = lo; a <= hi + 1e-9; a += 0.05) {
      out.push(`<line x1="${p.x0 - 4}" x2="${p.x0}" y1="${y(a).toFixed(1)}" y2="${y(a).toFixed(1)}" stroke="#444"/>`);
      out.push(`<text x="${p.x0 - 7}" y="${(y(a) + 4).toFixed(1)}" text-anchor="end">${Math.round(a * 100)}%</text>`);
    }
    for (const t of ticks(p.max)) {
      out.push(`<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${top + plotH}" y2="${top + plotH + 4}" stroke="#444"/>`);
      out.push(`<text x="${x(t).toFixed(1)}" y="${top + plotH + 17}" text-anchor="middle">${fmtTick(t)}</text>`);
    }
    out.push(`<text x="${p.x0 + panelW / 2}" y="${top + plotH + 34}" text-anchor="middle">${p.label}</text>`);
    for (const m of MARKS) {
      if (m.acc < lo || m.acc > hi) continue;
      out.push(`<line x1="${p.x0}" x2="${p.x0 + panelW}" y1="${y(m.acc).toFixed(1)}" y2="${y(m.acc).toFixed(1)}" stroke="#999" stroke-dasharray="2,3"/>`);
      out.push(`<text x="${p.x0 + panelW - 3}" y="${(y(m.acc) - 3).toFixed(1)}" text-anchor="end" fill="#777">${esc(m.text)}</text>`);
    }
    series.forEach((s, i) => {
      const c = COLOURS[i % COLOURS.length];
      const line = (get: (q: EpochPoint) => number | undefined, dash: string) => {
        const pts = s.points.filter((q) => get(q) !== undefined).map((q) => `${x(q[p.key]).toFixed(1)},${y(get(q) as number).toFixed(1)}`);
        if (pts.length === 0) return;
        out.push(`<polyline fill="none" stroke="${c}" stroke-width="2"${dash} points="${pts.join(' ')}"/>`);
        for (const pt of pts) out.push(`<circle cx="${pt.split(',')[0]}" cy="${pt.split(',')[1]}" r="2.5" fill="${c}"/>`);
      };
      line((q) => q.acc, '');
      line((q) => q.accTta, ' stroke-dasharray="6,4"');
    });
  }
  // legend
  series.forEach((s, i) => {
    const c = COLOURS[i % COLOURS.length];
    const ly = 362 + 18 * Math.floor(i / PER_ROW);
    const lx = 60 + (i % PER_ROW) * 280;
    out.push(`<line x1="${lx}" x2="${lx + 24}" y1="${ly - 4}" y2="${ly - 4}" stroke="${c}" stroke-width="2"/>`);
    out.push(`<text x="${lx + 30}" y="${ly}">${esc(s.label)}</text>`);
  });
  if (tta) {
    out.push(`<text x="${W - 10}" y="${362 + 18 * rows}" text-anchor="end" fill="#555">dashed: with flip TTA</text>`);
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function ticks(max: number): number[] {
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let t = 0; t <= max + 1e-9; t += step) out.push(Number(t.toPrecision(6)));
  return out;
}

function fmtTick(t: number): string {
  return Number.isInteger(t) ? String(t) : t.toFixed(t < 1 ? 2 : 1);
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function main(argv: string[]): void {
  let out = 'curves.svg';
  let title: string | undefined;
  const series: Series[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') out = argv[++i];
    else if (argv[i] === '--title') title = argv[++i];
    else {
      const eq = argv[i].lastIndexOf('=');
      const [label, file] = eq > 0 ? [argv[i].slice(0, eq), argv[i].slice(eq + 1)] : [argv[i], argv[i]];
      const ema = file.startsWith('ema:');
      series.push(readSeries(label, fs.readFileSync(ema ? file.slice(4) : file, 'utf8'), ema));
    }
  }
  if (series.length === 0) {
    process.stderr.write('usage: npx tsx scripts/plot-curves.ts [--out FILE.svg] [--title T] "LABEL=[ema:]metrics.jsonl" ...\n');
    process.exitCode = 2;
    return;
  }
  fs.writeFileSync(out, plotSvg(series, title));
  process.stdout.write(`wrote ${out}: ${series.map((s) => `${s.label} (${s.points.length} epochs)`).join(', ')}\n`);
}

if (require.main === module) main(process.argv.slice(2));
