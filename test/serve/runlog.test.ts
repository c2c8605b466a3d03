/** Tests of the tolerant, incremental metrics.jsonl reader behind the dashboard. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readMetricsChunk } from '../../src/serve/runlog';
import { tempDir } from '../predict/fixtures';

test('reads complete lines, leaves a torn last line for later, skips garbage, continues from the offset', async () => {
  const dir = tempDir('runlog');
  const file = path.join(dir, 'metrics.jsonl');
  try {
    assert.deepEqual(await readMetricsChunk(dir, 0), { records: [], next: 0, size: 0, reset: false, skipped: 0, more: false });
    const l1 = JSON.stringify({ type: 'step', step: 1, loss: 2.3 });
    const l2 = JSON.stringify({ type: 'epoch', epoch: 1, train_loss: 1.5, train_acc: 0.4, test_loss: 1.4, test_acc: 0.45, lr: 0.1 });
    fs.writeFileSync(file, `${l1}\nnot json\n[1,2]\n${l2}\n{"type":"step","st`);
    const a = await readMetricsChunk(dir, 0);
    assert.deepEqual(a.records, [JSON.parse(l1), JSON.parse(l2)]);
    assert.equal(a.skipped, 2);
    assert.equal(a.next, Buffer.byteLength(`${l1}\nnot json\n[1,2]\n${l2}\n`));
    // the torn line is completed by the writer: the next poll sees it
    fs.appendFileSync(file, 'ep":2,"loss":2.1}\n');
    const b = await readMetricsChunk(dir, a.next);
    assert.deepEqual(b.records, [{ type: 'step', step: 2, loss: 2.1 }]);
    assert.equal(b.next, fs.statSync(file).size);
    // a new run replaced the file: the client is told to start over
    fs.writeFileSync(file, `${l1}\n`);
    const c = await readMetricsChunk(dir, b.next);
    assert.equal(c.reset, true);
    assert.equal(c.next, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('returns at most maxBytes per call and says there is more', async () => {
  const dir = tempDir('runlog');
  try {
    const lines = Array.from({ length: 50 }, (_, i) => JSON.stringify({ type: 'step', step: i, loss: 1 / (i + 1) }));
    fs.writeFileSync(path.join(dir, 'metrics.jsonl'), lines.join('\n') + '\n');
    const seen: unknown[] = [];
    let from = 0;
    let calls = 0;
    for (;;) {
      const c = await readMetricsChunk(dir, from, 200);
      seen.push(...c.records);
      from = c.next;
      calls++;
      if (!c.more) break;
    }
    assert.ok(calls > 5, `expected several chunks, received ${calls}`);
    assert.deepEqual(seen, lines.map((l) => JSON.parse(l)));
    await assert.rejects(readMetricsChunk(dir, -1), /non-negative integer offset/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
