/**
 * Tests for the TensorBoard event-file writer and reader: framing and CRCs, file naming, scalars, the
 * resume purge, flushing, and a write failure that stops the writer but not training.
 * Golden vectors: RFC 3720 (CRC32C of 32 zero bytes), tensorboard/data/server/masked_crc.rs (masked CRC),
 * and the reference record for Event{wall_time=1.0, file_version="brain.Event:2"} as TensorBoard's own writer frames it.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32c, maskedCrc32c, encodeEventRecord, EventWriter, readEventFile } from '../../src/run/tensorboard';
import { tempDirMaker } from '../helpers/tmp';

const tmpDir = tempDirMaker('resnet-tb');

describe('CRC32C golden vectors', () => {
  test('crc32c of 32 zero bytes is 0x8a9136aa', () => {
    assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  });
  test('masked crc32c of "\\x1a\\x11CRC test, one two" is 0x5794d08a', () => {
    const bytes = Buffer.concat([Buffer.from([0x1a, 0x11]), Buffer.from('CRC test, one two', 'latin1')]);
    assert.equal(maskedCrc32c(bytes), 0x5794d08a);
  });
});

test('the file_version record is byte-exact', () => {
  const hex = '1800000000000000' + 'a37f4b22' + '09000000000000f03f1a0d627261696e2e4576656e743a32' + '86bf577a';
  assert.equal(encodeEventRecord({ wallTime: 1.0, fileVersion: 'brain.Event:2' }).toString('hex'), hex);
});

test('a written file starts with file_version and round-trips N scalars, NaN and Inf included', () => {
  const dir = tmpDir();
  const w = EventWriter.create(dir);
  const values = [0.5, -3.25, 1e-8, Number.NaN, Number.POSITIVE_INFINITY, 123456];
  for (let i = 0; i < 60; i++) w.addScalar(i % 2 ? 'train/loss' : 'train/acc', values[i % values.length], i, 1000 + i);
  w.addScalar('weird/wall', 1, 60, Number.NaN);
  w.close();
  assert.match(path.basename(w.path), /^events\.out\.tfevents\.\d{10}\.[^.]+.*\.\d+\.\d+$/);
  const { events, tornTail } = readEventFile(w.path);
  assert.equal(tornTail, false);
  assert.equal(events[0].fileVersion, 'brain.Event:2');
  const scalars = events.slice(1);
  assert.equal(scalars.length, 61);
  for (let i = 0; i < 60; i++) {
    const ev = scalars[i];
    assert.equal(ev.step, i);
    assert.equal(ev.wallTime, 1000 + i);
    assert.deepEqual(ev.scalars?.map((s) => s.tag), [i % 2 ? 'train/loss' : 'train/acc']);
    // simple_value is a proto float: compare against the float32 rounding of what was logged
    assert.ok(Object.is(ev.scalars?.[0].value, Math.fround(values[i % values.length])), `step ${i}`);
  }
  const nanWall = scalars[60].wallTime;
  assert.ok(Number.isFinite(nanWall) && Math.abs(nanWall - Date.now() / 1000) < 60, `wall_time ${nanWall}`);
});

test('addScalar rejects a bad step and writing after close', () => {
  const w = EventWriter.create(tmpDir());
  assert.throws(() => w.addScalar('x', 1, -1), /non-negative integer, received -1/);
  assert.throws(() => w.addScalar('x', 1, 1.5), /received 1\.5/);
  w.close();
  assert.throws(() => w.addScalar('x', 1, 2), /closed/);
});

test('events are on disk after the flush interval even without flush()', async () => {
  const w = EventWriter.create(tmpDir(), { flushSecs: 0.05 });
  w.addScalar('a', 1, 1);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(readEventFile(w.path).events.length, 2);
  w.close();
});

test('resume: a new file sorting after the old one, with START at the purge step after file_version', () => {
  const dir = tmpDir();
  const a = EventWriter.create(dir);
  for (let s = 0; s < 10; s++) a.addScalar('loss', s, s);
  a.close();
  const b = EventWriter.create(dir, { purgeStep: 5 });
  b.addScalar('loss', 50, 5);
  b.close();
  assert.notEqual(a.path, b.path);
  const names = fs.readdirSync(dir).sort();
  assert.deepEqual(names, [path.basename(a.path), path.basename(b.path)]);
  const { events } = readEventFile(b.path);
  assert.equal(events[0].fileVersion, 'brain.Event:2');
  assert.deepEqual(events[1].sessionLog, { status: 'START' });
  assert.equal(events[1].step, 5);
  assert.equal(events[2].scalars?.[0].value, 50);
  assert.equal(readEventFile(a.path).events.length, 11);
});

test('a file sorts after an existing one even when its timestamp lies in the future', () => {
  const dir = tmpDir();
  const future = Math.floor(Date.now() / 1000) + 1000;
  fs.writeFileSync(path.join(dir, `events.out.tfevents.${future}.otherhost.1.0`), '');
  const w = EventWriter.create(dir);
  w.close();
  assert.equal(fs.readdirSync(dir).sort().at(-1), path.basename(w.path));
});

test('two writers in the same second get different names', () => {
  const a = EventWriter.create(tmpDir());
  const b = EventWriter.create(tmpDir());
  a.close();
  b.close();
  const [ta, tb] = [path.basename(a.path), path.basename(b.path)];
  assert.notEqual(ta, tb);
  // same second, same host and pid here: the per-process counter keeps them apart
  if (ta.split('.')[3] === tb.split('.')[3]) assert.notEqual(ta.split('.').at(-1), tb.split('.').at(-1));
});

test('a file cut mid-record reads back every complete record and reports the torn tail', () => {
  const dir = tmpDir();
  const w = EventWriter.create(dir);
  for (let s = 1; s <= 5; s++) w.addScalar('v', s, s);
  w.close();
  const full = fs.readFileSync(w.path);
  const { events } = readEventFile(w.path);
  const lastStart = events[5].offset;
  for (const cut of [lastStart + 3, lastStart + 12, full.length - 1]) {
    fs.writeFileSync(w.path, full.subarray(0, cut));
    const r = readEventFile(w.path);
    assert.equal(r.tornTail, true, `cut at ${cut}`);
    assert.deepEqual(r.events.map((e) => e.step), [0, 1, 2, 3, 4]);
  }
});

test('a flipped byte is a CRC error naming the offset', () => {
  const w = EventWriter.create(tmpDir());
  w.addScalar('v', 1, 1);
  w.addScalar('v', 2, 2);
  w.close();
  const full = fs.readFileSync(w.path);
  const second = readEventFile(w.path).events[1].offset;
  const dataFlip = Buffer.from(full);
  dataFlip[second + 14] ^= 0x01;
  fs.writeFileSync(w.path, dataFlip);
  assert.throws(() => readEventFile(w.path), new RegExp(`data CRC mismatch in the record at offset ${second}`));
  const lenFlip = Buffer.from(full);
  lenFlip[second] ^= 0x01;
  fs.writeFileSync(w.path, lenFlip);
  assert.throws(() => readEventFile(w.path), new RegExp(`length CRC mismatch in the record at offset ${second}`));
});

test('a write failure warns once and stops writing instead of throwing', () => {
  const warnings: string[] = [];
  const w = EventWriter.create(tmpDir(), { onWarning: (m) => warnings.push(m) });
  const sizeBefore = fs.statSync(w.path).size;
  // Replace the descriptor with one opened read-only: the next write fails with EBADF, as on a broken disk.
  const ro = fs.openSync(w.path, 'r');
  const priv = w as unknown as { fd: number };
  fs.closeSync(priv.fd);
  priv.fd = ro;
  w.addScalar('v', 1, 1);
  w.flush();
  w.addScalar('v', 2, 2);
  w.close();
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /tensorboard: write to .*events\.out\.tfevents.* failed/);
  assert.equal(fs.statSync(w.path).size, sizeBefore);
});
