/**
 * `resnet serve` startup errors (src/cli/commands/serve.ts): a port already in use is a sentence
 * naming the address and port and what to do, not the raw `listen EADDRINUSE: address already in use`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { runServe } from '../../src/cli/commands/serve';
import { tempDir, writeTestWeights } from '../predict/fixtures';

let dir = '';
let weights = '';
let blocker: net.Server;
let port = 0;
before(async () => {
  dir = tempDir('cli-serve');
  weights = writeTestWeights(dir);
  blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  port = (blocker.address() as net.AddressInfo).port;
});
after(async () => {
  await new Promise((resolve) => blocker.close(resolve));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a port in use: which port on which host, and what to do', async () => {
  const opts = { weights, host: '127.0.0.1', port, maxConcurrent: 1, allowHost: [], quiet: true, backend: 'reference' };
  await assert.rejects(runServe(opts, () => undefined), (err: Error) => {
    assert.equal(err.message, `serve: port ${port} on 127.0.0.1 is already in use (another server, or a resnet serve still ` +
      'running); stop it, or choose another --port (--port 0 picks a free one)');
    return true;
  });
});
