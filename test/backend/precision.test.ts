/**
 * `--precision fp32|bf16|auto` (src/backend/precision.ts): auto follows what the backend can run, an explicit bf16
 * where it cannot is an error that says why, and a bad value names the option. The numerics of bf16 are checked
 * against PyTorch in test/golden/resnet18-bf16.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend } from '../../src/backend/backend';
import { createReferenceBackend } from '../../src/backend/reference';
import { applyPrecision, resolvePrecision } from '../../src/backend/precision';

/** The reference backend, claiming (or not) that it could run bf16 */
function fake(bf16: string | null): Backend {
  const set: string[] = [];
  const b = createReferenceBackend();
  return { ...b, bf16Unavailable: () => bf16, setPrecision: (p) => void set.push(p), precision: () => (set.at(-1) ?? 'fp32') as 'fp32' };
}

test('auto is bf16 exactly where the backend can run it', () => {
  assert.equal(resolvePrecision('auto', fake(null)), 'bf16');
  assert.equal(resolvePrecision('auto', fake('no AVX512_BF16 here')), 'fp32');
  assert.equal(resolvePrecision('fp32', fake(null)), 'fp32');
  assert.equal(applyPrecision('auto', fake(null)), 'bf16');
});

test('bf16 where it cannot run says why; a bad value names the option', () => {
  assert.throws(() => resolvePrecision('bf16', fake('bf16 needs a CPU with AVX512_BF16 or AMX-BF16 instructions')),
    /--precision bf16: bf16 needs a CPU with AVX512_BF16 or AMX-BF16 instructions/);
  assert.throws(() => applyPrecision('bf16', createReferenceBackend()), /--precision bf16: bf16 needs the native backend/);
  assert.throws(() => resolvePrecision('fp16', fake(null)), /--precision: expected fp32, bf16 or auto, received "fp16"/);
});
