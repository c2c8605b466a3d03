/**
 * TensorBoard event files: a writer for scalar summaries and a verifying reader (used by tests and tools).
 *
 * What it is: the TFRecord framing (uint64 LE length | masked CRC32C of the length bytes | payload | masked
 * CRC32C of the payload) around serialized `Event` protos, encoded with protobufjs from a minimal schema
 * (only the fields we write: wall_time, step, file_version, summary.value{tag, simple_value}, session_log).
 * What it is not: a general summary library (no images, histograms, graphs), and never an appender: every
 * process opens a new file, because appending after a torn tail stalls TensorBoard's loaders.
 *
 * References:
 * - tensorboard/summary/writer/record_writer.py and event_file_writer.py (framing, file naming);
 *   tensorboard/compat/proto/event.proto and summary.proto (field numbers);
 *   tensorboard/data/server/masked_crc.rs (mask constant and the test vector used in our tests).
 * - CRC32C (Castagnoli) polynomial 0x1EDC6F41, reflected 0x82F63B78 (RFC 3720, appendix B.4).
 * - SummaryWriter(purge_step=T) semantics: SessionLog.START at step T makes TensorBoard drop events with
 *   step >= T from earlier files (tensorboard/backend/event_processing/event_accumulator.py).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';

// ---------------------------------------------------------------------------------------------- CRC32C

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC32C (Castagnoli) of `bytes`, as an unsigned 32-bit integer. */
export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC32C_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** TFRecord's masked CRC: rotate right by 15 and add a constant, so that CRCs of CRCs stay well spread. */
export function maskedCrc32c(bytes: Uint8Array): number {
  const c = crc32c(bytes);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

// ----------------------------------------------------------------------------------------- proto schema

const ROOT = protobuf.Root.fromJSON({
  nested: {
    Event: {
      fields: {
        wallTime: { type: 'double', id: 1 },
        step: { type: 'int64', id: 2 },
        fileVersion: { type: 'string', id: 3 },
        summary: { type: 'Summary', id: 5 },
        sessionLog: { type: 'SessionLog', id: 6 },
      },
    },
    Summary: { fields: { value: { rule: 'repeated', type: 'Value', id: 1 } } },
    Value: { fields: { tag: { type: 'string', id: 1 }, simpleValue: { type: 'float', id: 2 } } },
    SessionLog: {
      fields: {
        status: { type: 'SessionStatus', id: 1 },
        checkpointPath: { type: 'string', id: 2 },
        msg: { type: 'string', id: 3 },
      },
    },
    SessionStatus: { values: { STATUS_UNSPECIFIED: 0, START: 1, STOP: 2, CHECKPOINT: 3 } },
  },
});
const EVENT = ROOT.lookupType('Event');

export type SessionStatus = 'STATUS_UNSPECIFIED' | 'START' | 'STOP' | 'CHECKPOINT';

/** One decoded event; absent fields are undefined (step 0 is written as absent, as proto3 does). */
export interface ParsedEvent {
  offset: number;
  wallTime: number;
  step: number;
  fileVersion?: string;
  scalars?: { tag: string; value: number }[];
  sessionLog?: { status: SessionStatus; checkpointPath?: string; msg?: string };
}

interface EventFields {
  wallTime: number;
  step?: number;
  fileVersion?: string;
  summary?: { value: { tag: string; simpleValue: number }[] };
  sessionLog?: { status: number; checkpointPath?: string; msg?: string };
}

/** Frames one payload as a TFRecord. */
export function encodeRecord(payload: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + payload.length + 4);
  out.writeBigUInt64LE(BigInt(payload.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(payload, 12);
  out.writeUInt32LE(maskedCrc32c(payload), 12 + payload.length);
  return out;
}

/** Serializes an Event to a full record. Step 0 is left out (proto3 default), like TensorFlow's writer. */
export function encodeEventRecord(ev: EventFields): Buffer {
  const msg: Record<string, unknown> = { wallTime: ev.wallTime };
  if (ev.step !== undefined && ev.step !== 0) msg.step = ev.step;
  if (ev.fileVersion !== undefined) msg.fileVersion = ev.fileVersion;
  if (ev.summary !== undefined) msg.summary = ev.summary;
  if (ev.sessionLog !== undefined) msg.sessionLog = ev.sessionLog;
  return encodeRecord(EVENT.encode(EVENT.fromObject(msg)).finish());
}

// ----------------------------------------------------------------------------------------------- writer

export interface EventWriterOptions {
  /** resume: write SessionLog.START at this step right after the file_version event */
  purgeStep?: number;
  /** buffered events are written at least this often (default 2 s); flush()/close() also fsync */
  flushSecs?: number;
  /** where I/O problems go after the file exists (default: console.warn); the writer then stops writing */
  onWarning?: (message: string) => void;
}

const FILE_PREFIX = 'events.out.tfevents.';
let fileCounter = 0;

function existingMaxTimestamp(dir: string): number {
  let max = -1;
  for (const name of fs.readdirSync(dir)) {
    if (!name.startsWith(FILE_PREFIX)) continue;
    const t = Number(name.slice(FILE_PREFIX.length, FILE_PREFIX.length + 10));
    if (Number.isInteger(t)) max = Math.max(max, t);
  }
  return max;
}

/**
 * Creates the file exclusively. The timestamp is the current second, or one past the newest event file
 * already in the folder when the clock says otherwise, so that TensorBoard (which reads files in name order)
 * always sees this file after the previous run's.
 */
function createEventFile(dir: string): { fd: number; file: string } {
  fs.mkdirSync(dir, { recursive: true });
  const host = os.hostname().replace(/[^A-Za-z0-9._-]/g, '_') || 'localhost';
  for (let attempt = 0; ; attempt++) {
    const t = Math.max(Math.floor(Date.now() / 1000), existingMaxTimestamp(dir) + 1);
    const name = `${FILE_PREFIX}${String(t).padStart(10, '0')}.${host}.${process.pid}.${fileCounter++}`;
    const file = path.join(dir, name);
    try {
      return { fd: fs.openSync(file, 'wx'), file };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 100) throw err;
    }
  }
}

export class EventWriter {
  readonly path: string;
  private fd: number | null;
  private pending: Buffer[] = [];
  private lastWrite = Date.now();
  private failed = false;
  private readonly flushMs: number;
  private readonly warn: (message: string) => void;
  private readonly timer: NodeJS.Timeout;
  private readonly onExit = (): void => this.writePending();

  private constructor(fd: number, file: string, opts: EventWriterOptions) {
    this.fd = fd;
    this.path = file;
    this.flushMs = (opts.flushSecs ?? 2) * 1000;
    this.warn = opts.onWarning ?? ((m) => console.warn(m));
    // A timer for quiet periods; the hot path also writes when flushMs has passed (a synchronous training loop
    // would starve the timer). unref: the writer never keeps the process alive.
    this.timer = setInterval(() => this.writePending(), this.flushMs).unref();
    process.on('exit', this.onExit);
  }

  /** Opens a new event file in `dir` (created if missing) and writes the file_version (and START) events. */
  static create(dir: string, opts: EventWriterOptions = {}): EventWriter {
    if (opts.purgeStep !== undefined && !(Number.isSafeInteger(opts.purgeStep) && opts.purgeStep >= 0)) {
      throw new Error(`EventWriter.create: expected purgeStep a non-negative integer, received ${opts.purgeStep}`);
    }
    const { fd, file } = createEventFile(dir);
    const w = new EventWriter(fd, file, opts);
    w.pending.push(encodeEventRecord({ wallTime: Date.now() / 1000, fileVersion: 'brain.Event:2' }));
    if (opts.purgeStep !== undefined) {
      w.pending.push(encodeEventRecord({ wallTime: Date.now() / 1000, step: opts.purgeStep, sessionLog: { status: 1 } }));
    }
    w.flush();
    return w;
  }

  /**
   * Queues one scalar. NaN and ±Inf values are written as they are (TensorBoard shows them); a wall time that
   * is not finite is replaced by the current time, because TensorBoard's Rust reader rejects a NaN wall_time.
   */
  addScalar(tag: string, value: number, step: number, wallTime?: number): void {
    if (this.fd === null) throw new Error(`EventWriter.addScalar: the writer for ${this.path} is closed`);
    if (typeof tag !== 'string' || tag.length === 0) {
      throw new Error(`EventWriter.addScalar: expected a non-empty tag, received ${JSON.stringify(tag)}`);
    }
    if (!Number.isSafeInteger(step) || step < 0) {
      throw new Error(`EventWriter.addScalar(${tag}): expected step a non-negative integer, received ${step}`);
    }
    if (typeof value !== 'number') {
      throw new Error(`EventWriter.addScalar(${tag}): expected a number value, received ${typeof value}`);
    }
    const wt = wallTime !== undefined && Number.isFinite(wallTime) ? wallTime : Date.now() / 1000;
    this.pending.push(encodeEventRecord({ wallTime: wt, step, summary: { value: [{ tag, simpleValue: value }] } }));
    if (Date.now() - this.lastWrite >= this.flushMs) this.writePending();
  }

  /** Writes everything queued and fsyncs it (call at epoch end and before exit). Never throws on I/O. */
  flush(): void {
    this.writePending();
    if (this.fd === null || this.failed) return;
    try {
      fs.fsyncSync(this.fd);
    } catch (err) {
      this.fail('fsync', err);
    }
  }

  close(): void {
    if (this.fd === null) return;
    this.flush();
    clearInterval(this.timer);
    process.removeListener('exit', this.onExit);
    try {
      fs.closeSync(this.fd);
    } catch (err) {
      this.fail('close', err);
    }
    this.fd = null;
  }

  private writePending(): void {
    this.lastWrite = Date.now();
    if (this.pending.length === 0 || this.fd === null || this.failed) return;
    const buf = Buffer.concat(this.pending);
    this.pending = [];
    try {
      for (let off = 0; off < buf.length; ) off += fs.writeSync(this.fd, buf, off, buf.length - off);
    } catch (err) {
      this.fail('write', err);
    }
  }

  /**
   * After a failed write the file may end in a torn record; writing more after it would make TensorBoard
   * stop reading the file, so the writer stops (training goes on: losing the logs must not lose the run).
   */
  private fail(op: string, err: unknown): void {
    this.failed = true;
    this.pending = [];
    this.warn(`tensorboard: ${op} to ${this.path} failed (${(err as Error).message}); no more events are written to it`);
  }
}

// ----------------------------------------------------------------------------------------------- reader

function toParsed(offset: number, o: Record<string, unknown>): ParsedEvent {
  const ev: ParsedEvent = { offset, wallTime: (o.wallTime as number) ?? 0, step: (o.step as number) ?? 0 };
  if (o.fileVersion !== undefined) ev.fileVersion = o.fileVersion as string;
  const summary = o.summary as { value?: { tag?: string; simpleValue?: number }[] } | undefined;
  if (summary !== undefined) ev.scalars = (summary.value ?? []).map((v) => ({ tag: v.tag ?? '', value: v.simpleValue ?? 0 }));
  const log = o.sessionLog as { status?: SessionStatus; checkpointPath?: string; msg?: string } | undefined;
  if (log !== undefined) ev.sessionLog = { ...log, status: log.status ?? 'STATUS_UNSPECIFIED' };
  return ev;
}

/**
 * Reads and verifies a whole event file. A final record cut short (a writer killed mid-write) is reported as
 * `tornTail`; a CRC mismatch anywhere is an error naming the file and the record's offset.
 */
export function readEventFile(file: string): { events: ParsedEvent[]; tornTail: boolean } {
  const buf = fs.readFileSync(file);
  const events: ParsedEvent[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < 12) return { events, tornTail: true };
    const lenBytes = buf.subarray(off, off + 8);
    if (maskedCrc32c(lenBytes) !== buf.readUInt32LE(off + 8)) {
      throw new Error(`readEventFile ${file}: length CRC mismatch in the record at offset ${off}`);
    }
    const len = Number(buf.readBigUInt64LE(off));
    if (buf.length - off - 12 < len + 4) return { events, tornTail: true };
    const payload = buf.subarray(off + 12, off + 12 + len);
    if (maskedCrc32c(payload) !== buf.readUInt32LE(off + 12 + len)) {
      throw new Error(`readEventFile ${file}: data CRC mismatch in the record at offset ${off}`);
    }
    let obj: Record<string, unknown>;
    try {
      obj = EVENT.toObject(EVENT.decode(payload), { longs: Number, enums: String });
    } catch (err) {
      throw new Error(`readEventFile ${file}: invalid Event proto at offset ${off} (${(err as Error).message})`, { cause: err });
    }
    events.push(toParsed(off, obj));
    off += 12 + len + 4;
  }
  return { events, tornTail: false };
}
