/** Tests of the concurrency bound behind the 503 answers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConcurrencyLimiter, PerKeyLimiter } from '../../src/serve/limiter';

test('gives at most max slots, frees them on release, and a double release frees one', () => {
  const lim = new ConcurrencyLimiter(2);
  const a = lim.tryAcquire();
  const b = lim.tryAcquire();
  assert.ok(a && b);
  assert.equal(lim.tryAcquire(), null);
  assert.equal(lim.inFlight, 2);
  a();
  a();
  assert.equal(lim.inFlight, 1);
  const c = lim.tryAcquire();
  assert.ok(c);
  assert.equal(lim.tryAcquire(), null);
  b();
  c();
  assert.equal(lim.inFlight, 0);
});

test('refuses a non-positive bound', () => {
  assert.throws(() => new ConcurrencyLimiter(0), /positive integer, received 0/);
});

test('per key: at most max slots for each key, other keys unaffected, keys forgotten when idle', () => {
  const lim = new PerKeyLimiter(2);
  const a1 = lim.tryAcquire('10.0.0.1');
  const a2 = lim.tryAcquire('10.0.0.1');
  assert.ok(a1 && a2);
  assert.equal(lim.tryAcquire('10.0.0.1'), null);
  const b = lim.tryAcquire('10.0.0.2');
  assert.ok(b);
  a1();
  a1();
  assert.equal(lim.inFlight('10.0.0.1'), 1);
  assert.ok(lim.tryAcquire('10.0.0.1'));
  b();
  assert.equal(lim.inFlight('10.0.0.2'), 0);
  assert.throws(() => new PerKeyLimiter(0), /positive integer, received 0/);
});
