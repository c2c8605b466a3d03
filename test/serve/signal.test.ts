/**
 * `resnet serve` stopped by Ctrl-C, as a terminal sends it: SIGINT to the whole process group, the server and its
 * inference process alike. The server (started from the TypeScript sources, in a process group of its own) must
 * answer the request in flight (200, or 503 JSON once the 10 s grace is over), exit 0 and leave no inference
 * process behind; the inference process ignores the
 * signal and is ended by the server once its batches are done.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { tempDir, writeImages, writeTestWeights } from '../predict/fixtures';
import { request } from './client';

let dir = '';
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Whether a process with this pid exists (signal 0 only checks). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('SIGINT to the process group: the request in flight is answered, exit code 0, the inference process kept to the end, then gone', async () => {
  dir = tempDir('serve-signal');
  const weights = writeTestWeights(dir);
  const png = fs.readFileSync((await writeImages(dir)).good.png);
  // the CLI as bin/resnet.js runs it: compiled when the tests run compiled (npm test), from the sources under tsx
  const fromSources = __filename.endsWith('.ts');
  const main = path.join(__dirname, '../../src/cli', fromSources ? 'main.ts' : 'main.js');
  const entry = path.join(dir, 'resnet.js');
  const hook = fromSources ? `require(${JSON.stringify(require.resolve('tsx/cjs'))});\n` : '';
  fs.writeFileSync(entry, `${hook}require(${JSON.stringify(main)}).main(process.argv).then((c) => { process.exitCode = c ?? 0; });\n`);
  const server = spawn(process.execPath, [entry, 'serve', '--weights', weights, '--port', '0', '--max-batch', '2'], {
    detached: true, // a process group of its own, as a shell gives a foreground job
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  server.stderr.on('data', (c: Buffer) => (err += c));
  const exited = new Promise<number | null>((resolve) => server.on('exit', (c) => resolve(c)));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (c: Buffer) => {
      out += c;
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    server.on('exit', (c) => reject(new Error(`resnet serve exited (${c}) before listening: ${err}`)));
  });
  const children = fs.readFileSync(`/proc/${server.pid}/task/${server.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  assert.equal(children.length, 1, `one inference process, found ${children}`);
  // a request surely in flight at the signal: its body is sent in two parts, the second after the signal
  const { port } = new URL(url);
  const sock = net.connect(Number(port), '127.0.0.1');
  let answer = '';
  sock.on('data', (c: Buffer) => (answer += c.toString('utf8')));
  const ended = new Promise<void>((resolve) => sock.on('close', () => resolve()));
  sock.write(`POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${png.length}\r\n\r\n`);
  sock.write(png.subarray(0, 10));
  for (let i = 0; i < 500 && (await request(url, '/api/health')).json.uploads < 1; i++) await new Promise((r) => setTimeout(r, 20));
  process.kill(-(server.pid as number), 'SIGINT');
  for (let i = 0; i < 500 && !/SIGINT/.test(err); i++) await new Promise((r) => setTimeout(r, 20));
  sock.write(png.subarray(10));
  await ended;
  // answered: classified, or (on a machine too busy to finish within the 10 s grace) 503 JSON, never cut off
  if (/^HTTP\/1\.1 200 OK/.test(answer)) assert.match(answer, /"probs":\[/);
  else assert.match(answer, /^HTTP\/1\.1 503 [^]*"code":"shutting-down"/);
  assert.equal(await exited, 0, err);
  // the inference process ignored the signal: it was not lost and replaced during the shutdown
  assert.doesNotMatch(err, /inference process exited/);
  for (let i = 0; i < 100 && alive(children[0]); i++) await new Promise((res) => setTimeout(res, 20));
  assert.equal(alive(children[0]), false, 'the inference process has ended');
  assert.match(err, /SIGINT: finishing in-flight requests/);
});
