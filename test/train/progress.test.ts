/**
 * Tests for the epoch progress shown when stderr is not a terminal (the test runner's case): periodic plain
 * lines with steps, loss, images/s and an ETA that, after a resume in mid-epoch, counts only the steps this
 * process ran (a resumed run used to promise an epoch's end several times too early).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Progress } from '../../src/train/progress';

/** Runs `fn` with process.stderr.write captured; returns what was written. */
function captureStderr(fn: () => void): string {
  const chunks: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((c: string | Uint8Array): boolean => {
    chunks.push(String(c));
    return true;
  }) as typeof process.stderr.write;
  try {
    fn();
  } finally {
    process.stderr.write = write;
  }
  return chunks.join('');
}

test('a fresh epoch: ETA is the steps left at the pace so far; a plain line every 30 s, not more often', () => {
  let t = 1000;
  const p = new Progress('epoch 1/3', 100, 0, () => t);
  const out = captureStderr(() => {
    for (let i = 0; i < 20; i++) {
      t += 2000; // 2 s per step of 128 images
      p.tick(1.5, 128);
    }
  });
  assert.equal(p.rate, 64);
  assert.equal(p.eta(), 160); // 80 steps left x 2 s
  // 40 s passed: the first line after 30 s (step 16), the next one not before 60 s
  assert.deepEqual(out.split('\n').filter(Boolean), ['epoch 1/3: 16/100 steps, loss 1.5000, 64.0 img/s, ETA 168 s']);
});

test('resumed at step 80 of 100: the ETA counts only the steps run since, not the 80 done before', () => {
  let t = 0;
  const p = new Progress('epoch 2/3', 100, 80, () => t);
  for (let i = 0; i < 10; i++) {
    t += 3000;
    p.tick(0.9, 128);
  }
  assert.equal(p.eta(), 30); // 10 steps left x 3 s; counting the 80 resumed steps would say 3.3 s
  const out = captureStderr(() => {
    t += 31_000;
    p.tick(0.8, 128);
  });
  assert.match(out, /^epoch 2\/3: 91\/100 steps, loss 0\.8000, \d+\.\d img\/s, ETA 50 s\n$/);
});
