/**
 * A small reader and writer of Python pickles, for the opcodes that `torch.save` emits (protocol 2 by default,
 * up to 5 when asked) and the handful that its state dicts need.
 *
 * What it is: a stack machine over the binary opcodes; `GLOBAL`s are never imported: the caller's `findClass`
 * decides what each one means (a JS function for REDUCE, or a plain marker), so a file can only build the
 * objects the caller allows; persistent ids (how torch refers to tensor storages) go to `persistentLoad`.
 * What it is not: a general unpickler (no text protocol 0 strings, sets, extensions or class instances
 * beyond what the hooks build), nor a pickler of arbitrary objects: `PickleWriter` emits opcodes one by one.
 *
 * Values: None → null, bool → boolean, int → number (bigint beyond 2^53), float → number, str → string,
 * bytes → Uint8Array, tuple and list → array, dict → PyDict (a Map that also keeps BUILD's attributes).
 *
 * References: CPython Lib/pickletools.py (the opcode table) and PEP 307 / PEP 3154 (protocols 2 and 4).
 */

/** A Python global the caller did not resolve: `module.name`. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  toString(): string {
    return `${this.module}.${this.name}`;
  }
}

/** A Python dict (or OrderedDict); `attrs` holds what BUILD set on it (e.g. a state dict's `_metadata`). */
export class PyDict extends Map<unknown, unknown> {
  attrs: unknown = undefined;
}

export interface UnpickleHooks {
  /** Meaning of `GLOBAL module name`: a function called by REDUCE/NEWOBJ, or any marker value. */
  findClass?(module: string, name: string): unknown;
  /** Meaning of a persistent id (BINPERSID): torch stores tensor storages this way. */
  persistentLoad?(pid: unknown): unknown;
}

const OP = {
  PROTO: 0x80, FRAME: 0x95, STOP: 0x2e, MARK: 0x28, POP: 0x30, POP_MARK: 0x31, DUP: 0x32,
  NONE: 0x4e, NEWTRUE: 0x88, NEWFALSE: 0x89,
  BININT: 0x4a, BININT1: 0x4b, BININT2: 0x4d, LONG1: 0x8a, LONG4: 0x8b, BINFLOAT: 0x47,
  BINSTRING: 0x54, SHORT_BINSTRING: 0x55, BINUNICODE: 0x58, SHORT_BINUNICODE: 0x8c, BINUNICODE8: 0x8d,
  BINBYTES: 0x42, SHORT_BINBYTES: 0x43, BINBYTES8: 0x8e,
  EMPTY_TUPLE: 0x29, TUPLE: 0x74, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87,
  EMPTY_LIST: 0x5d, APPEND: 0x61, APPENDS: 0x65, LIST: 0x6c, EMPTY_DICT: 0x7d, DICT: 0x64,
  SETITEM: 0x73, SETITEMS: 0x75,
  BINPUT: 0x71, LONG_BINPUT: 0x72, MEMOIZE: 0x94, BINGET: 0x68, LONG_BINGET: 0x6a,
  GLOBAL: 0x63, STACK_GLOBAL: 0x93, REDUCE: 0x52, NEWOBJ: 0x81, BUILD: 0x62, BINPERSID: 0x51,
} as const;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const latin1 = new TextDecoder('latin1');

/** Two's-complement little-endian integer of `bytes`; a number when it is safe, else a bigint. */
function decodeLong(bytes: Uint8Array): number | bigint {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
  if (bytes.length > 0 && bytes[bytes.length - 1] & 0x80) v -= 1n << BigInt(8 * bytes.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

class Unpickler {
  private pos: number;
  private readonly view: DataView;
  private stack: unknown[] = [];
  private readonly marks: unknown[][] = [];
  private readonly memo = new Map<number, unknown>();

  constructor(
    private readonly bytes: Uint8Array,
    offset: number,
    private readonly hooks: UnpickleHooks,
  ) {
    this.pos = offset;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private fail(what: string): never {
    throw new Error(`unpickle: ${what} (at byte ${this.pos})`);
  }

  /** Advances over `n` bytes; returns where they start. */
  private advance(n: number): number {
    if (n < 0 || this.pos + n > this.bytes.length) {
      this.fail(`expected ${n} more bytes, received ${this.bytes.length - this.pos} (truncated pickle)`);
    }
    this.pos += n;
    return this.pos - n;
  }

  private take(n: number): Uint8Array {
    const at = this.advance(n);
    return this.bytes.subarray(at, at + n);
  }

  private u8(): number {
    return this.bytes[this.advance(1)];
  }

  private u32(): number {
    return this.view.getUint32(this.advance(4), true);
  }

  private u64(): number {
    const v = this.view.getBigUint64(this.advance(8), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`length ${v} is too large`);
    return Number(v);
  }

  private line(): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0) this.fail('expected a newline-terminated name, received the end of the data');
    return latin1.decode(this.take(end - this.pos + 1).subarray(0, -1));
  }

  private pop(): unknown {
    if (this.stack.length === 0) this.fail('expected a value on the stack, received an empty stack');
    return this.stack.pop();
  }

  private popMark(): unknown[] {
    const items = this.stack;
    const prev = this.marks.pop();
    if (prev === undefined) this.fail('expected a MARK before this opcode, found none');
    this.stack = prev;
    return items;
  }

  private top(): unknown {
    if (this.stack.length === 0) this.fail('expected a value on the stack, received an empty stack');
    return this.stack[this.stack.length - 1];
  }

  private topList(): unknown[] {
    const t = this.top();
    if (!Array.isArray(t)) this.fail(`expected a list for APPEND(S), received ${String(t)}`);
    return t;
  }

  private global(module: string, name: string): unknown {
    return this.hooks.findClass ? this.hooks.findClass(module, name) : new PyGlobal(module, name);
  }

  private call(fn: unknown, args: unknown): unknown {
    if (typeof fn !== 'function') this.fail(`cannot call ${String(fn)}: not an allowed callable`);
    if (!Array.isArray(args)) this.fail(`expected a tuple of arguments, received ${typeof args}`);
    return (fn as (...a: unknown[]) => unknown)(...args);
  }

  private setItems(target: unknown, items: unknown[]): void {
    if (!(target instanceof PyDict)) this.fail(`expected a dict for SETITEM(S), received ${String(target)}`);
    if (items.length % 2 !== 0) this.fail(`expected key/value pairs, received ${items.length} items`);
    for (let i = 0; i < items.length; i += 2) target.set(items[i], items[i + 1]);
  }

  private build(obj: unknown, state: unknown): void {
    if (obj instanceof PyDict) obj.attrs = state;
    else if (obj !== null && typeof obj === 'object' && '__setstate__' in obj) {
      (obj as { __setstate__(s: unknown): void }).__setstate__(state);
    } else this.fail(`cannot BUILD ${String(obj)}: no state to set`);
  }

  /** Runs until STOP; returns the value and the offset just after STOP. */
  run(): { value: unknown; end: number } {
    for (;;) {
      const op = this.u8();
      if (op === OP.STOP) return { value: this.pop(), end: this.pos };
      this.step(op);
    }
  }

  private pushData(op: number): boolean {
    const s = this.stack;
    switch (op) {
      case OP.NONE: s.push(null); return true;
      case OP.NEWTRUE: s.push(true); return true;
      case OP.NEWFALSE: s.push(false); return true;
      case OP.BININT: s.push(this.view.getInt32(this.advance(4), true)); return true;
      case OP.BININT1: s.push(this.u8()); return true;
      case OP.BININT2: s.push(this.u8() | (this.u8() << 8)); return true;
      case OP.LONG1: s.push(decodeLong(this.take(this.u8()))); return true;
      case OP.LONG4: s.push(decodeLong(this.take(this.u32()))); return true;
      case OP.BINFLOAT: s.push(this.view.getFloat64(this.advance(8), false)); return true;
      case OP.BINUNICODE: s.push(utf8.decode(this.take(this.u32()))); return true;
      case OP.SHORT_BINUNICODE: s.push(utf8.decode(this.take(this.u8()))); return true;
      case OP.BINUNICODE8: s.push(utf8.decode(this.take(this.u64()))); return true;
      case OP.BINSTRING: s.push(latin1.decode(this.take(this.u32()))); return true;
      case OP.SHORT_BINSTRING: s.push(latin1.decode(this.take(this.u8()))); return true;
      case OP.BINBYTES: s.push(this.take(this.u32()).slice()); return true;
      case OP.SHORT_BINBYTES: s.push(this.take(this.u8()).slice()); return true;
      case OP.BINBYTES8: s.push(this.take(this.u64()).slice()); return true;
      case OP.EMPTY_TUPLE: s.push([]); return true;
      case OP.EMPTY_LIST: s.push([]); return true;
      case OP.EMPTY_DICT: s.push(new PyDict()); return true;
      default: return false;
    }
  }

  private step(op: number): void {
    if (this.pushData(op)) return;
    const s = this.stack;
    switch (op) {
      case OP.PROTO: this.u8(); return;
      case OP.FRAME: this.u64(); return;
      case OP.MARK: this.marks.push(this.stack); this.stack = []; return;
      case OP.POP: this.pop(); return;
      case OP.POP_MARK: this.popMark(); return;
      case OP.DUP: s.push(this.top()); return;
      case OP.TUPLE: case OP.LIST: { const items = this.popMark(); this.stack.push(items); return; }
      case OP.TUPLE1: s.push([this.pop()]); return;
      case OP.TUPLE2: { const b = this.pop(); s.push([this.pop(), b]); return; }
      case OP.TUPLE3: { const c = this.pop(); const b = this.pop(); s.push([this.pop(), b, c]); return; }
      case OP.DICT: { const d = new PyDict(); this.setItems(d, this.popMark()); this.stack.push(d); return; }
      case OP.APPEND: { const v = this.pop(); this.topList().push(v); return; }
      case OP.APPENDS: { const items = this.popMark(); this.topList().push(...items); return; }
      case OP.SETITEM: { const v = this.pop(); const k = this.pop(); this.setItems(this.top(), [k, v]); return; }
      case OP.SETITEMS: { const items = this.popMark(); this.setItems(this.top(), items); return; }
      case OP.BINPUT: this.memo.set(this.u8(), this.top()); return;
      case OP.LONG_BINPUT: this.memo.set(this.u32(), this.top()); return;
      case OP.MEMOIZE: this.memo.set(this.memo.size, this.top()); return;
      case OP.BINGET: s.push(this.memoGet(this.u8())); return;
      case OP.LONG_BINGET: s.push(this.memoGet(this.u32())); return;
      case OP.GLOBAL: { const module = this.line(); s.push(this.global(module, this.line())); return; }
      case OP.STACK_GLOBAL: { const name = this.pop(); const module = this.pop(); s.push(this.global(String(module), String(name))); return; }
      case OP.REDUCE: case OP.NEWOBJ: { const args = this.pop(); s.push(this.call(this.pop(), args)); return; }
      case OP.BUILD: { const state = this.pop(); this.build(this.top(), state); return; }
      case OP.BINPERSID: {
        if (!this.hooks.persistentLoad) this.fail('found a persistent id, but no persistentLoad was given');
        s.push(this.hooks.persistentLoad(this.pop()));
        return;
      }
      default:
        this.pos--;
        this.fail(`unsupported opcode 0x${op.toString(16).padStart(2, '0')} (not one that torch.save emits)`);
    }
  }

  private memoGet(i: number): unknown {
    if (!this.memo.has(i)) this.fail(`expected memo entry ${i}, found none`);
    return this.memo.get(i);
  }
}

/** Reads one pickle starting at `offset`; returns its value and the offset after its STOP opcode. */
export function unpickle(bytes: Uint8Array, offset = 0, hooks: UnpickleHooks = {}): { value: unknown; end: number } {
  return new Unpickler(bytes, offset, hooks).run();
}

/**
 * Emits pickle opcodes (protocol 2) into a growing buffer. The caller writes a well-formed program
 * (e.g. `proto(); global(...); ...; stop()`); no memo is used, so every GLOBAL is written out in full.
 */
export class PickleWriter {
  private buf = new Uint8Array(1 << 12);
  private len = 0;
  private static readonly enc = new TextEncoder();

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  private bytes(...b: number[]): this {
    this.ensure(b.length);
    for (const x of b) this.buf[this.len++] = x;
    return this;
  }

  private u32(v: number): this {
    return this.bytes(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  }

  proto(version = 2): this { return this.bytes(OP.PROTO, version); }
  stop(): this { return this.bytes(OP.STOP); }
  mark(): this { return this.bytes(OP.MARK); }
  tuple(): this { return this.bytes(OP.TUPLE); }
  emptyTuple(): this { return this.bytes(OP.EMPTY_TUPLE); }
  emptyDict(): this { return this.bytes(OP.EMPTY_DICT); }
  setItems(): this { return this.bytes(OP.SETITEMS); }
  reduce(): this { return this.bytes(OP.REDUCE); }
  build(): this { return this.bytes(OP.BUILD); }
  persId(): this { return this.bytes(OP.BINPERSID); }
  bool(v: boolean): this { return this.bytes(v ? OP.NEWTRUE : OP.NEWFALSE); }
  none(): this { return this.bytes(OP.NONE); }

  /** GLOBAL 'module\nname\n' (ASCII names only, as Python's protocol 2 requires). */
  global(module: string, name: string): this {
    const text = PickleWriter.enc.encode(`${module}\n${name}\n`);
    this.bytes(OP.GLOBAL);
    this.ensure(text.length);
    this.buf.set(text, this.len);
    this.len += text.length;
    return this;
  }

  str(s: string): this {
    const text = PickleWriter.enc.encode(s);
    this.bytes(OP.BINUNICODE).u32(text.length);
    this.ensure(text.length);
    this.buf.set(text, this.len);
    this.len += text.length;
    return this;
  }

  /** A non-negative or negative integer in the shortest of BININT1, BININT2, BININT and LONG1. */
  int(v: number): this {
    if (!Number.isSafeInteger(v)) throw new Error(`PickleWriter.int: expected a safe integer, received ${v}`);
    if (v >= 0 && v < 0x100) return this.bytes(OP.BININT1, v);
    if (v >= 0 && v < 0x10000) return this.bytes(OP.BININT2, v & 0xff, v >>> 8);
    if (v >= -0x80000000 && v <= 0x7fffffff) return this.bytes(OP.BININT).u32(v >>> 0);
    const out: number[] = [];
    let b = BigInt(v);
    do {
      out.push(Number(b & 0xffn));
      b >>= 8n;
    } while (!((b === 0n && !(out[out.length - 1] & 0x80)) || (b === -1n && out[out.length - 1] & 0x80)));
    return this.bytes(OP.LONG1, out.length, ...out);
  }

  /** A tuple of small integers (shapes and strides): MARK ints... TUPLE, or EMPTY_TUPLE. */
  intTuple(values: readonly number[]): this {
    if (values.length === 0) return this.emptyTuple();
    this.mark();
    for (const v of values) this.int(v);
    return this.tuple();
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}
