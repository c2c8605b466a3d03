/**
 * Choosing the compute precision (`--precision fp32|bf16|auto`): `auto` is bf16 where the backend runs it natively
 * (the native backend on a CPU with AVX512_BF16 or AMX-BF16), fp32 elsewhere; an explicit bf16 where it cannot
 * run is an error that names what is missing.
 */
import type { Backend, Precision } from './backend';

export const PRECISION_CHOICES = ['fp32', 'bf16', 'auto'] as const;
export type PrecisionChoice = (typeof PRECISION_CHOICES)[number];

/** The precision `choice` means on `backend`; throws for bf16 where it cannot run. */
export function resolvePrecision(choice: PrecisionChoice | string, backend: Backend): Precision {
  if (!(PRECISION_CHOICES as readonly string[]).includes(choice)) {
    throw new Error(`--precision: expected fp32, bf16 or auto, received ${JSON.stringify(choice)}`);
  }
  if (choice === 'fp32') return 'fp32';
  const why = backend.bf16Unavailable();
  if (choice === 'auto') return why === null ? 'bf16' : 'fp32';
  if (why !== null) throw new Error(`--precision bf16: ${why}`);
  return 'bf16';
}

/** Resolves `choice` and sets it on the backend; returns what is now in force. */
export function applyPrecision(choice: PrecisionChoice | string, backend: Backend): Precision {
  const p = resolvePrecision(choice, backend);
  backend.setPrecision(p);
  return p;
}
