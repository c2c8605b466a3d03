/** Tests of the concurrency bound behind the 503 answers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConcurrencyLimiter } from '../../src/serve/limiter';

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
