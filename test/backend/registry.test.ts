/**
 * The backend registry (src/backend/index.ts): a backend registered under a name is listed, selectable by
 * `useBackend` and `backendByName`; an unavailable one is refused with its reason and passed over by `auto`;
 * unknown and reserved names are refused with the registered names. The fakes wrap the reference backend.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  backendByName, backendUnavailableReason, getBackend, nativeUnavailableReason, registerBackend, registeredBackends,
  useBackend,
} from '../../src/backend';
import type { Backend } from '../../src/backend';
import { createReferenceBackend } from '../../src/backend/reference';

let made = 0;
const fake = (name: string) => (): Backend => {
  made++;
  return { ...createReferenceBackend(), name };
};

describe('backend registry', () => {
  test('the built-in backends are registered, native before reference', () => {
    const names = registeredBackends();
    assert.ok(names.indexOf('native') >= 0 && names.indexOf('native') < names.indexOf('reference'), names.join(', '));
    assert.equal(backendUnavailableReason('reference'), null);
    assert.equal(backendUnavailableReason('native'), nativeUnavailableReason());
  });

  test('a registered backend is listed and selectable, and created once', () => {
    registerBackend('fake-ref', { factory: fake('fake-ref'), available: () => ({ ok: true }) });
    assert.ok(registeredBackends().includes('fake-ref'));
    const before = made;
    const b = useBackend('fake-ref');
    assert.equal(b.name, 'fake-ref');
    assert.equal(getBackend(), b);
    assert.equal(backendByName('fake-ref'), b);
    assert.equal(made, before + 1);
    // it computes like the backend it wraps
    const s = b.fromArray(Float32Array.of(-1, 2), [2]);
    assert.deepEqual(Array.from(b.toArray(b.relu(s, [2]), [2])), [0, 2]);
  });

  test('an unavailable backend is refused with its reason, and never created', () => {
    const before = made;
    registerBackend('fake-missing', { factory: fake('fake-missing'), available: () => ({ ok: false, reason: 'no such device here' }) });
    assert.equal(backendUnavailableReason('fake-missing'), 'no such device here');
    assert.throws(() => useBackend('fake-missing'), /fake-missing backend unavailable: no such device here/);
    assert.equal(made, before);
  });

  test('auto passes over an unavailable backend ranked first, and picks an available one ranked first', () => {
    registerBackend('fake-first-missing', {
      autoRank: -2, factory: fake('fake-first-missing'), available: () => ({ ok: false, reason: 'not built' }),
    });
    assert.notEqual(useBackend('auto').name, 'fake-first-missing');
    registerBackend('fake-preferred', { autoRank: -1, factory: fake('fake-preferred'), available: () => ({ ok: true }) });
    assert.deepEqual(registeredBackends().slice(0, 2), ['fake-first-missing', 'fake-preferred']);
    assert.equal(useBackend('auto').name, 'fake-preferred');
  });

  test('unknown, reserved and duplicate names are refused by name', () => {
    assert.throws(() => useBackend('cuda'), (err: Error) => {
      assert.match(err.message, /received "cuda"/);
      for (const n of registeredBackends()) assert.ok(err.message.includes(n), `${n} missing from: ${err.message}`);
      return true;
    });
    const entry = { factory: fake('x'), available: () => ({ ok: true as const }) };
    assert.throws(() => registerBackend('auto', entry), /other than auto/);
    assert.throws(() => registerBackend('Bad Name', entry), /lower-case name/);
    assert.throws(() => registerBackend('reference', entry), /already registered/);
  });
});
