/**
 * OpenMP profiles (src/backend/native/binding.ts): predict, serve and `bench --latency-only` load the addon in the
 * latency profile (idle threads spin LATENCY_SPINCOUNT iterations), training and the rest in the throughput profile
 * (threads sleep), and a wait policy the user set wins. Each case starts the CLI in a child process, because
 * libgomp reads the setting once per process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cliCommand } from '../helpers/cli';
import { nativeAvailable } from '../../src/backend/native';
import { openMpProfileFor } from '../../src/cli/main';

const native = nativeAvailable();
const skip = native.ok ? false : `native backend unavailable: ${native.reason}`;

function latencyChild(env: NodeJS.ProcessEnv): { profile: string; waitPolicy: string; spinCount: string } {
  const r = spawnSync(process.execPath, [...cliCommand(), 'bench', '--latency-only'], {
    encoding: 'utf8', env: { ...process.env, OMP_WAIT_POLICY: undefined, GOMP_SPINCOUNT: undefined, ...env },
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() as string) as { latency_ms_b1: number; openmp: { profile: string; waitPolicy: string; spinCount: string } };
  assert.ok(out.latency_ms_b1 > 0);
  return out.openmp;
}

test('which subcommands get the latency profile', () => {
  const argv = (...a: string[]) => ['node', 'resnet', ...a];
  assert.equal(openMpProfileFor(argv('predict', 'cat.jpg')), 'latency');
  assert.equal(openMpProfileFor(argv('--backend', 'native', 'serve', '--port', '0')), 'latency');
  assert.equal(openMpProfileFor(argv('bench', '--latency-only')), 'latency');
  assert.equal(openMpProfileFor(argv('bench', '--json')), 'throughput');
  assert.equal(openMpProfileFor(argv('train', '--recipe', 'fast')), 'throughput');
  assert.equal(openMpProfileFor(argv('eval')), 'throughput');
});

test('bench --latency-only runs with spinning threads; a wait policy the user set wins', { skip }, () => {
  assert.deepEqual(latencyChild({}), { profile: 'latency', waitPolicy: 'default', spinCount: '1000' });
  assert.deepEqual(latencyChild({ OMP_WAIT_POLICY: 'passive' }), { profile: 'latency', waitPolicy: 'passive', spinCount: 'default' });
  assert.deepEqual(latencyChild({ GOMP_SPINCOUNT: '500' }), { profile: 'latency', waitPolicy: 'default', spinCount: '500' });
});

/** `resnet bench --json` at a tiny size in a child process with these OpenMP variables: its latency_openmp. */
function benchLatencyOpenMp(env: NodeJS.ProcessEnv): object | undefined {
  const r = spawnSync(process.execPath, [...cliCommand(), 'bench', '--json', '--batch', '2', '--steps', '1'], {
    encoding: 'utf8', env: { ...process.env, OMP_WAIT_POLICY: undefined, GOMP_SPINCOUNT: undefined, RESNET_CONV_ALGO: 'deterministic', ...env },
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() as string) as { latency_ms_b1: number; latency_openmp?: object };
  assert.ok(out.latency_ms_b1 > 0);
  return out.latency_openmp;
}

test('bench measures latency_ms_b1 in a child process in the latency profile, not with its own sleeping threads', { skip }, () => {
  // the parent runs in the throughput profile (OMP_WAIT_POLICY=passive, set by itself); its child must not inherit that
  assert.deepEqual(benchLatencyOpenMp({}), { profile: 'latency', waitPolicy: 'default', spinCount: '1000' });
  // a wait policy the user set still reaches the child
  assert.deepEqual(benchLatencyOpenMp({ OMP_WAIT_POLICY: 'active' }), { profile: 'latency', waitPolicy: 'active', spinCount: 'default' });
});
