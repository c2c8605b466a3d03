/**
 * The README's accuracy plot (scripts/plot-curves.ts): points come from the epoch records only, a resumed epoch
 * counts once, hours accumulate the epochs' seconds, and the SVG places them where the axes say.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { plotSvg, readSeries } from '../../scripts/plot-curves';

const METRICS = [
  { kind: 'step', epoch: 1, step: 1, loss: 2.3 },
  { kind: 'epoch', epoch: 1, test_acc: 0.5, seconds: 1800 },
  { kind: 'epoch', epoch: 2, test_acc: 0.8, test_acc_tta: 0.82, seconds: 3600 },
  // the same epoch written again after a resume: the later record wins
  { kind: 'epoch', epoch: 2, test_acc: 0.9, test_acc_tta: 0.92, seconds: 5400 },
].map((r) => JSON.stringify(r)).join('\n');

test('readSeries: epoch records, last one per epoch, cumulative hours', () => {
  const s = readSeries('run', `${METRICS}\n`);
  assert.deepEqual(s.points, [
    { epoch: 1, acc: 0.5, accTta: undefined, hours: 0.5 },
    { epoch: 2, acc: 0.9, accTta: 0.92, hours: 2 },
  ]);
});

test('readSeries with ema: the moving average\'s accuracies, epochs without one left out', () => {
  const text = [
    { kind: 'epoch', epoch: 1, test_acc: 0.5, seconds: 1800 },
    { kind: 'epoch', epoch: 2, test_acc: 0.6, ema_test_acc: 0.7, ema_test_acc_tta: 0.71, seconds: 1800 },
  ].map((r) => JSON.stringify(r)).join('\n');
  assert.deepEqual(readSeries('run', text, true).points, [{ epoch: 2, acc: 0.7, accTta: 0.71, hours: 0.5 }]);
});

test('plotSvg: one solid and one dashed line per run, on the axes it draws', () => {
  const svg = plotSvg([readSeries('fast, seed 0', METRICS)]);
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  // accuracy axis: the lowest tick is floor((min(0.8, 0.5) - 0.02) * 20) / 20 = 0.45, the top 100%, over 260 px
  // from y=50; the epoch panel starts at x=60 and is 380 px wide for 2 epochs.
  const y = (a: number) => (50 + 260 * (1 - (a - 0.45) / 0.55)).toFixed(1);
  assert.ok(svg.includes(`points="250.0,${y(0.5)} 440.0,${y(0.9)}"`), 'the epoch panel line');
  assert.ok(svg.includes(`stroke-dasharray="6,4" points="440.0,${y(0.92)}"`), 'the TTA line, only where logged');
  // the hours panel: x0 = 60 + 380 + 70 = 510, 2 h in all
  assert.ok(svg.includes(`points="605.0,${y(0.5)} 890.0,${y(0.9)}"`), 'the wall-time panel line');
  assert.ok(svg.includes("seed's 88.54%") && svg.includes('>fast, seed 0<'));
});

test('plotSvg: the legend wraps three runs a row inside the width, the TTA note below it', () => {
  const svg = plotSvg(['a', 'b', 'c', 'd'].map((l) => readSeries(l, METRICS)));
  const legend = [...svg.matchAll(/<text x="(\d+)" y="(\d+)">([a-d])<\/text>/g)].map((m) => [m[3], Number(m[1]), Number(m[2])]);
  // rows 18 px apart from y=362; columns 280 px apart, each label 30 px right of its line
  assert.deepEqual(legend, [['a', 90, 362], ['b', 370, 362], ['c', 650, 362], ['d', 90, 380]]);
  assert.match(svg, /<text x="890" y="398" text-anchor="end" fill="#555">dashed: with flip TTA<\/text>/);
  assert.match(svg, /^<svg [^>]* width="900" height="416" /);
});
