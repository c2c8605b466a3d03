/**
 * A signal that really comes from the operating system (process.kill on this process, not process.emit) stops the
 * trainer after the step during which it arrived, even when the loader's next batch is always ready.
 *
 * Node runs signal listeners only in the event loop's poll phase. A training loop whose every `await` resolves at
 * once (batches prefetched by the worker, or made in this thread from the decoded cache) would stay in microtasks
 * for a whole epoch, and a real Ctrl-C was then seen only when the epoch ended (found on a real run). The trainer
 * yields a full event-loop turn after each step; these tests would fail without it, with the stop at the epoch's end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { latestCheckpoint, latestPointer, tinyConfig, trainerTempRoot, trainQuiet } from './trainer-fixtures/setup';

const STEPS_PER_EPOCH = 24; // 24 training images, batches of 1
const fx = trainerTempRoot('trainer-signal');

// Step 5 of epoch 2, and its first step: the first batch of an epoch is the one the loop waits for (the worker's
// reply, or the previous epoch's evaluation and save came before it), so its step starts in a different phase of
// the event loop than the steps after it; a single yield per step used to let one more step run.
const CASES = [
  ['SIGINT', 130, false, 4], ['SIGTERM', 143, true, 4], ['SIGINT', 130, true, 0], ['SIGINT', 130, false, 0],
] as const;
for (const [signal, code, worker, inEpoch] of CASES) {
  test(`a real ${signal} during step ${inEpoch + 1} of an epoch of ${STEPS_PER_EPOCH} (${worker ? 'worker' : 'in-thread'} loader): saved after that step, exit ${code}`, async () => {
    const out = path.join(fx.root, `${signal}-${worker}-${inEpoch}`);
    const sendAt = STEPS_PER_EPOCH + inEpoch; // 0-based global step in epoch 2
    const r = await trainQuiet({
      config: tinyConfig({ batchSize: 1 }), data: fx.data, out, worker,
      transformBatch: (_b, step) => {
        if (step === sendAt) process.kill(process.pid, signal);
      },
    });
    assert.equal(r.result.status, 'interrupted');
    assert.equal(r.result.exitCode, code);
    // The step under way when the signal came completes, and no other starts.
    assert.equal(r.result.step, sendAt + 1, `stopped after global step ${r.result.step}, the signal came during step ${sendAt + 1}`);
    assert.equal(r.result.epochsDone, 1);
    const ckpt = await latestCheckpoint(out);
    assert.equal(ckpt.step, sendAt + 1);
    assert.equal(latestPointer(out).file, 'epoch-0002.ckpt', 'a mid-epoch checkpoint of epoch 2');
  });
}
