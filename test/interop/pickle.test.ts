/**
 * The pickle reader and writer (src/interop/pickle.ts): values through PickleWriter → unpickle, opcodes of
 * higher protocols as Python writes them, and the refusals (unknown opcodes, globals nobody allowed,
 * truncated input).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PickleWriter, PyDict, PyGlobal, unpickle } from '../../src/interop/pickle';

const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);

describe('PickleWriter → unpickle', () => {
  test('integers of every width, including LONG1 and negatives', () => {
    const values = [0, 1, 255, 256, 65535, 65536, -1, -129, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 40, -(2 ** 40), 2 ** 53 - 1];
    for (const v of values) {
      const p = new PickleWriter().proto(2).int(v).stop().finish();
      assert.equal(unpickle(p).value, v, `int ${v}`);
    }
  });

  test('strings, tuples, booleans, None, and an OrderedDict built by REDUCE', () => {
    const w = new PickleWriter().proto(2);
    w.global('collections', 'OrderedDict').emptyTuple().reduce().mark();
    w.str('ключ.0').mark().int(1).int(2).tuple();
    w.str('flags').mark().bool(true).bool(false).none().tuple();
    w.str('empty').intTuple([]);
    w.setItems().stop();
    const { value, end } = unpickle(w.finish(), 0, {
      findClass: (m, n) => (m === 'collections' && n === 'OrderedDict' ? () => new PyDict() : new PyGlobal(m, n)),
    });
    assert.ok(value instanceof PyDict);
    assert.deepEqual([...value.entries()], [['ключ.0', [1, 2]], ['flags', [true, false, null]], ['empty', []]]);
    assert.equal(end, w.finish().length);
  });

  test('consecutive pickles: each read returns where the next begins', () => {
    const a = new PickleWriter().proto(2).int(7).stop().finish();
    const b = new PickleWriter().proto(2).str('x').stop().finish();
    const both = new Uint8Array([...a, ...b]);
    const first = unpickle(both);
    assert.equal(first.value, 7);
    assert.equal(unpickle(both, first.end).value, 'x');
  });
});

describe('unpickle: opcodes of protocols 2 to 4', () => {
  test('FRAME, SHORT_BINUNICODE, MEMOIZE, BINGET, STACK_GLOBAL, TUPLE3, BINFLOAT, EMPTY_LIST/APPENDS', () => {
    // protocol 4: ('a', 'a', 1.5, [1, 2]) with the string memoized and fetched back, then a STACK_GLOBAL call
    const p = bytes(
      0x80, 4, 0x95, 40, 0, 0, 0, 0, 0, 0, 0,
      0x28, // MARK
      0x8c, 1, 0x61, 0x94, // SHORT_BINUNICODE 'a', MEMOIZE (memo 0)
      0x68, 0, // BINGET 0
      0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, // BINFLOAT 1.5 (big-endian)
      0x5d, 0x28, 0x4b, 1, 0x4b, 2, 0x65, // EMPTY_LIST, MARK, 1, 2, APPENDS
      0x8c, 1, 0x6d, 0x8c, 1, 0x66, 0x93, 0x29, 0x52, // 'm' 'f' STACK_GLOBAL, EMPTY_TUPLE, REDUCE → 42
      0x74, 0x2e, // TUPLE, STOP
    );
    const { value } = unpickle(p, 0, { findClass: (m, n) => (m === 'm' && n === 'f' ? () => 42 : null) });
    assert.deepEqual(value, ['a', 'a', 1.5, [1, 2], 42]);
  });

  test('LONG1 beyond 2^53 comes back as a bigint (the legacy .pth magic number)', () => {
    const p = bytes(0x80, 2, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e);
    assert.equal(unpickle(p).value, 0x1950a86a20f9469cfc6cn);
  });
});

describe('unpickle: refusals', () => {
  test('a global that findClass did not turn into a function cannot be called', () => {
    const p = new PickleWriter().proto(2).global('os', 'system').mark().str('echo hi').tuple().reduce().stop().finish();
    assert.throws(() => unpickle(p), /cannot call os\.system: not an allowed callable/);
  });

  test('an opcode torch.save never emits is named', () => {
    assert.throws(() => unpickle(bytes(0x80, 2, 0x8f, 0x2e)), /unsupported opcode 0x8f/);
  });

  test('truncated input says how many bytes were expected', () => {
    const p = new PickleWriter().proto(2).str('abcdef').stop().finish();
    assert.throws(() => unpickle(p.subarray(0, 8)), /expected 6 more bytes, received 1 \(truncated pickle\)/);
  });

  test('a persistent id without a persistentLoad hook', () => {
    assert.throws(() => unpickle(bytes(0x80, 2, 0x4b, 1, 0x51, 0x2e)), /persistent id, but no persistentLoad/);
  });
});
