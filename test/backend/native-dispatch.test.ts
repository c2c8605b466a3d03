/**
 * The portable addon on every CPU: our own kernels are compiled for baseline x86-64, AVX2 and AVX-512 and chosen
 * at run time (native/dispatch.cc), oneDNN dispatches its own, and the convolution benchmark's choices are cached
 * per machine (native/conv_select.cc). Each check starts the addon in a child process, because the instruction
 * set is fixed when the addon loads: the parity suite forced down to AVX2 (RESNET_ISA=avx2 with
 * ONEDNN_MAX_CPU_ISA=AVX2) and to baseline x86-64 (with oneDNN limited to SSE4.1), and the cache file written by
 * one process and reused by the next.
 * Skips when the addon is unavailable, unless RESNET_REQUIRE_NATIVE=1.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { nativeAvailable } from '../../src/backend/native';
import { nativeAddonPath } from '../../src/backend/native/binding';
import { tempDirMaker } from '../helpers/tmp';

const tempDir = tempDirMaker('conv-cache');
const avail = nativeAvailable();
const SKIP = avail.ok || process.env.RESNET_REQUIRE_NATIVE === '1' ? false : `native addon unavailable: ${avail.ok ? '' : avail.reason}`;
const cpuFlags = new Set((readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '').trim().split(/\s+/));

/** Runs a script against the raw addon in a child process with extra environment; returns its stdout. */
function inChild(script: string, env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const code = `const A = require(${JSON.stringify(nativeAddonPath())});\n${script}`;
  const r = spawnSync(process.execPath, ['-e', code], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// one 3x3 convolution at a shape of its own, then the choice the benchmark made for it
const CONV_SCRIPT = `
A.setConvPolicy('benchmark', process.env.CACHE);
const xS = [2, 32, 10, 10], wS = [32, 32, 3, 3];
const y = A.conv2d(A.fromArray(new Float32Array(6400).fill(1), xS), xS, A.fromArray(new Float32Array(9216).fill(1), wS), wS, null, [1, 1], [1, 1]);
const out = A.toArray(y, xS);
const c = A.convChoices().choices.find((c) => c.key === 'fwd|[2,32,10,10][32,32,3,3][1,1][1,1]');
console.log(JSON.stringify({ centre: out[5 * 10 + 5], algo: c.algo, measured: c.measured, describe: A.describe() }));
`;

describe('the addon on every CPU', { skip: SKIP }, () => {
  test('it names the instruction set of our kernels, and RESNET_ISA forces it down or is refused by name', () => {
    const have = cpuFlags.has('avx512f') && cpuFlags.has('avx512bw') ? 'avx512' : cpuFlags.has('avx2') ? 'avx2' : 'x86-64';
    assert.match(inChild('console.log(A.describe())', {}).stdout, new RegExp(`our kernels ${have}\\b`));
    assert.match(inChild('console.log(A.describe())', { RESNET_ISA: 'x86-64' }).stdout, /our kernels x86-64\b/);
    const bad = inChild('console.log(A.describe())', { RESNET_ISA: 'sse9' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /RESNET_ISA: expected avx512, avx2 or x86-64, received sse9/);
  });

  const parityFile = join(__dirname, `native-parity.test${extname(__filename)}`);
  const forced: Array<{ name: string; env: Record<string, string>; needs: string | null }> = [
    { name: 'AVX2 (our kernels and oneDNN)', env: { RESNET_ISA: 'avx2', ONEDNN_MAX_CPU_ISA: 'AVX2' }, needs: 'avx2' },
    { name: 'baseline x86-64 (oneDNN at SSE4.1)', env: { RESNET_ISA: 'x86-64', ONEDNN_MAX_CPU_ISA: 'SSE41' }, needs: null },
  ];
  for (const f of forced) {
    test(`the parity suite passes with the dispatch forced down to ${f.name}`, { skip: f.needs && !cpuFlags.has(f.needs) ? `this CPU has no ${f.needs}` : false }, () => {
      // NODE_TEST_CONTEXT would make the child report to this runner in its private format instead of TAP
      const env: NodeJS.ProcessEnv = { ...process.env, ...f.env, RESNET_CONV_CACHE: 'off' };
      delete env.NODE_TEST_CONTEXT;
      const r = spawnSync(process.execPath, [...process.execArgv, '--test', '--test-reporter=tap', parityFile], {
        env, encoding: 'utf8', timeout: 600_000,
      });
      assert.equal(r.status, 0, `parity suite under ${JSON.stringify(f.env)} failed:\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-2000)}`);
      assert.match(r.stdout, /^# fail 0$/m);
      assert.match(r.stdout, /^# pass [1-9]\d+$/m);
    });
  }

  test('bf16 is refused, naming the instructions, where oneDNN has no native bf16 (here: limited to AVX2)', () => {
    const r = inChild(`try { A.setPrecision('bf16'); console.log('accepted'); } catch (e) { console.log(e.message); }
      console.log(JSON.stringify(A.precisionInfo()));`, { ONEDNN_MAX_CPU_ISA: 'AVX2' });
    const [msg, info] = r.stdout.trim().split('\n');
    assert.match(msg, /bf16 needs a CPU with AVX512_BF16 or AMX-BF16 instructions/);
    assert.deepEqual(JSON.parse(info).precision, 'fp32');
    assert.equal(JSON.parse(info).bf16.ok, false);
  });

  test('the benchmark choices are written to the cache file and reused by the next process on this machine only', () => {
    const dir = tempDir();
    const cache = join(dir, 'choices.tsv');
    const first = JSON.parse(inChild(CONV_SCRIPT, { CACHE: cache }).stdout);
    assert.equal(first.centre, 32 * 9); // whichever algorithm won, the answer is the convolution's
    assert.equal(first.measured, true);
    const lines = readFileSync(cache, 'utf8').split('\n');
    assert.match(lines[0], /^# .+ \| oneDNN \d+\.\d+\.\d+.* \| our kernels (avx512|avx2|x86-64) \| choices v\d+$/);
    assert.ok(lines.includes(`fwd|[2,32,10,10][32,32,3,3][1,1][1,1]\t${first.algo}`), lines.join('\n'));

    const second = JSON.parse(inChild(CONV_SCRIPT, { CACHE: cache }).stdout);
    assert.deepEqual([second.algo, second.measured], [first.algo, false]);

    // a file made on another machine (its first line differs) is not trusted: measured again, and rewritten
    writeFileSync(cache, `# Some Other CPU | oneDNN 9.9.9 | our kernels x86-64\nfwd|[2,32,10,10][32,32,3,3][1,1][1,1]\tdirect\n`);
    const third = JSON.parse(inChild(CONV_SCRIPT, { CACHE: cache }).stdout);
    assert.equal(third.measured, true);
    assert.equal(readFileSync(cache, 'utf8').split('\n')[0], lines[0]);
  });
});
