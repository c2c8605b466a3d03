/**
 * `resnet eval --tta MODE` as a child process, on a run trained here for 2 epochs (tiny generated ImageFolder,
 * ResNet-18 at width 4, reference backend), against the same figures computed by hand: every test image's views
 * made in the test (test/predict/tta-views.ts), each run alone through the unfused eval-mode model, their softmax
 * averaged, the arg-max taken. The confusion matrix and accuracy are the same; the loss, −log of the mean
 * probability of the true class, agrees within 1e-4 relative. The hand-made flip-shift predictions differ from the
 * plain ones on some image, so a --tta that did nothing would fail.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { backendByName } from '../../src/backend';
import { Loader, openDataset } from '../../src/data';
import { loadWeights } from '../../src/interop/weights';
import { resnet18 } from '../../src/models/resnet';
import { Tensor, noGrad, tidy } from '../../src/tensor';
import { removeDir, tempDir } from '../data/make';
import { meanRows, softmax64, viewsOf } from '../predict/tta-views';
import { startCli } from '../train/trainer-fixtures/child';
import { CLASSES, makeDataset, tinyConfig, trainQuiet } from '../train/trainer-fixtures/setup';

type Mode = 'off' | 'flip' | 'flip-shift';
interface Figures {
  n: number;
  loss: number;
  acc: number;
  perClassAcc: number[];
  confusion: number[][];
}

let root = '';
let data = '';
let run = '';
let env: Record<string, string> = {};
/** per test image: its label and its views' probabilities under each mode */
let perImage: { y: number; probs: Record<Mode, number[]>; }[] = [];

before(async () => {
  root = tempDir('cli-eval-tta');
  env = { RESNET_CACHE_DIR: path.join(root, 'cache') };
  process.env.RESNET_CACHE_DIR = env.RESNET_CACHE_DIR;
  data = await makeDataset(path.join(root, 'data'), { testPerClass: [5, 6, 7] });
  run = path.join(root, 'run');
  assert.equal((await trainQuiet({ config: tinyConfig({ epochs: 2 }), data, out: run, worker: false })).result.status, 'completed');

  const be = backendByName('reference');
  const model = resnet18({ numClasses: CLASSES.length, baseWidth: 4, backend: be });
  model.loadStateDict((await loadWeights(run)).stateDict);
  model.eval();
  const logitsOf = (img: Float32Array): number[] =>
    Array.from(noGrad(() => tidy(() => model.forward(Tensor.fromArray(img, [1, 3, 32, 32], be)).toArray())));
  const split = (await openDataset(data)).test;
  const loader = new Loader(split, { batchSize: 4, shuffle: false, seed: 0, dropLast: false, augment: { crop: false, flip: false } });
  perImage = [];
  for await (const b of loader.batches(0)) {
    for (let i = 0; i < b.n; i++) {
      const img = b.x.slice(i * 3072, (i + 1) * 3072);
      const probs = {} as Record<Mode, number[]>;
      for (const mode of ['off', 'flip', 'flip-shift'] as const) probs[mode] = meanRows(viewsOf(img, mode).map((v) => softmax64(logitsOf(v))));
      perImage.push({ y: b.y[i], probs });
    }
  }
  model.dispose();
});
after(() => removeDir(root));

/** The figures eval should report, from the per-image probabilities. */
function byHand(mode: Mode): Figures & { pred: number[] } {
  const C = CLASSES.length;
  const confusion = Array.from({ length: C }, () => new Array<number>(C).fill(0));
  const pred = perImage.map(({ probs }) => probs[mode].indexOf(Math.max(...probs[mode])));
  perImage.forEach(({ y }, i) => confusion[y][pred[i]]++);
  const n = perImage.length;
  const loss = perImage.reduce((s, { y, probs }) => s - Math.log(probs[mode][y]), 0) / n;
  const correct = confusion.reduce((s, row, i) => s + row[i], 0);
  const perClassAcc = confusion.map((row, i) => row[i] / row.reduce((a, b) => a + b, 0));
  return { n, loss, acc: correct / n, perClassAcc, confusion, pred };
}

async function evalJson(args: string[]): Promise<Figures & { tta: string }> {
  const child = startCli(['eval', '--weights', run, '--data', data, '--json', ...args], env);
  const { code } = await child.exited;
  assert.equal(code, 0, child.stderr());
  return JSON.parse(child.stdout()) as Figures & { tta: string };
}

for (const mode of ['off', 'flip', 'flip-shift'] as const) {
  test(`--tta ${mode}: accuracy, per-class accuracy and confusion as computed by hand, loss within 1e-4`, async () => {
    const got = await evalJson(mode === 'off' ? [] : ['--tta', mode]);
    const want = byHand(mode);
    assert.equal(got.tta, mode);
    assert.equal(got.n, 18);
    assert.deepEqual(got.confusion, want.confusion);
    assert.deepEqual(got.perClassAcc, want.perClassAcc);
    assert.equal(got.acc, want.acc);
    assert.ok(Math.abs(got.loss - want.loss) <= 1e-4 * want.loss, `loss ${got.loss}, by hand ${want.loss}`);
  });
}

test('the hand-made flip-shift predictions differ from the plain ones (the test above can tell TTA from none)', () => {
  const plain = byHand('off').pred;
  const tta = byHand('flip-shift').pred;
  assert.ok(tta.some((p, i) => p !== plain[i]), `plain ${plain}, flip-shift ${tta}`);
});

test('the table says which TTA it used; an unknown mode is refused with the choices', async () => {
  const child = startCli(['eval', '--weights', run, '--data', data, '--tta', 'flip'], env);
  assert.equal((await child.exited).code, 0, child.stderr());
  const want = byHand('flip');
  assert.match(child.stdout().split('\n')[0], new RegExp(`on test \\(18 images\\) with tta flip: loss ${want.loss.toFixed(4)}, accuracy ${(100 * want.acc).toFixed(2)}%$`));
  assert.match(child.stderr(), /^precision: fp32, tta: flip$/m);
  const bad = startCli(['eval', '--weights', run, '--data', data, '--tta', 'rotate'], env);
  assert.equal((await bad.exited).code, 1);
  assert.match(bad.stderr(), /argument 'rotate' is invalid\. Allowed choices are off, flip, flip-shift/);
});
