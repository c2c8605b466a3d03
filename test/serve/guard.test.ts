/** Tests of the Host (DNS rebinding) and Origin (CSRF) guards. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { checkHost, checkSameOrigin, hostnameOf, isLoopbackHost, makeHostPolicy } from '../../src/serve/guard';
import { HttpError } from '../../src/serve/http';

const req = (headers: Record<string, string>): IncomingMessage => ({ headers }) as unknown as IncomingMessage;

function status(fn: () => void): number | 'ok' {
  try {
    fn();
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof HttpError, `expected an HttpError, received ${String(err)}`);
    return err.status;
  }
}

describe('Host header', () => {
  test('parses names, IPv4 and bracketed IPv6 with or without a port', () => {
    assert.equal(hostnameOf('LocalHost:8080'), 'localhost');
    assert.equal(hostnameOf('127.0.0.1'), '127.0.0.1');
    assert.equal(hostnameOf('[::1]:80'), '::1');
    assert.equal(hostnameOf('[::1]x'), null);
    assert.equal(hostnameOf('a:b:c'), null);
    assert.equal(hostnameOf(''), null);
  });
  test('accepts IP literals and localhost, refuses other names (DNS rebinding)', () => {
    const policy = makeHostPolicy('127.0.0.1');
    assert.equal(status(() => checkHost(req({ host: '127.0.0.1:8080' }), policy)), 'ok');
    assert.equal(status(() => checkHost(req({ host: 'localhost:8080' }), policy)), 'ok');
    assert.equal(status(() => checkHost(req({ host: '[::1]:8080' }), policy)), 'ok');
    assert.equal(status(() => checkHost(req({ host: '192.168.1.5:8080' }), policy)), 'ok');
    assert.equal(status(() => checkHost(req({ host: 'evil.example:8080' }), policy)), 403);
    assert.equal(status(() => checkHost(req({ host: 'localhost.evil.example' }), policy)), 403);
    assert.equal(status(() => checkHost(req({}), policy)), 400);
  });
  test('a name bound explicitly or allowed is accepted', () => {
    assert.equal(status(() => checkHost(req({ host: 'box.lan' }), makeHostPolicy('box.lan'))), 'ok');
    assert.equal(status(() => checkHost(req({ host: 'Gpu.Lan:9' }), makeHostPolicy('0.0.0.0', ['gpu.lan']))), 'ok');
  });
  test('loopback detection', () => {
    assert.ok(isLoopbackHost('127.0.0.1') && isLoopbackHost('::1') && isLoopbackHost('localhost'));
    assert.ok(!isLoopbackHost('0.0.0.0') && !isLoopbackHost('192.168.0.1') && !isLoopbackHost('::'));
  });
});

describe('Origin (CSRF)', () => {
  test('same origin and no origin (curl) pass', () => {
    assert.equal(status(() => checkSameOrigin(req({ host: '127.0.0.1:8080', origin: 'http://127.0.0.1:8080' }))), 'ok');
    assert.equal(status(() => checkSameOrigin(req({ host: '127.0.0.1:8080' }))), 'ok');
    assert.equal(status(() => checkSameOrigin(req({ host: '127.0.0.1:8080', 'sec-fetch-site': 'same-origin' }))), 'ok');
  });
  test('another origin, a null origin, or Sec-Fetch-Site cross-site is refused', () => {
    assert.equal(status(() => checkSameOrigin(req({ host: '127.0.0.1:8080', origin: 'http://evil.example' }))), 403);
    assert.equal(status(() => checkSameOrigin(req({ host: '127.0.0.1:8080', origin: 'null' }))), 403);
    assert.equal(status(() => checkSameOrigin(req({ host: '127.0.0.1:8080', origin: 'http://127.0.0.1:9999' }))), 403);
    assert.equal(status(() => checkSameOrigin(req({ host: '127.0.0.1:8080', 'sec-fetch-site': 'cross-site' }))), 403);
  });
});
