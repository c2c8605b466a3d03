/**
 * Backend registry: which kernel implementation tensors are created on.
 *
 * `useBackend('auto')` (the default) picks the native oneDNN backend when its addon loads, and otherwise falls back
 * to the plain-TypeScript reference backend with one warning that says how to build the addon. The environment
 * variable RESNET_BACKEND (native | reference | auto) sets the default for a whole process.
 */
import type { Backend } from './backend';
import { createReferenceBackend } from './reference';

export type BackendName = 'native' | 'reference' | 'auto';

const instances = new Map<string, Backend>();
let current: Backend | null = null;
let warnedFallback = false;

/** The reason the native backend cannot be used, or null when it can. */
export function nativeUnavailableReason(): string | null {
  try {
    const native = require('./native') as typeof import('./native');
    const status = native.nativeAvailable();
    return status.ok ? null : status.reason;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** Returns the backend of that name (created once per process). 'auto' resolves as described above. */
export function backendByName(name: BackendName): Backend {
  if (name === 'auto') {
    const reason = nativeUnavailableReason();
    if (reason === null) return backendByName('native');
    if (!warnedFallback) {
      warnedFallback = true;
      process.stderr.write(`resnet: using the slow reference backend: ${reason}\n`);
    }
    return backendByName('reference');
  }
  const cached = instances.get(name);
  if (cached) return cached;
  let b: Backend;
  if (name === 'reference') {
    b = createReferenceBackend();
  } else if (name === 'native') {
    const native = require('./native') as typeof import('./native');
    b = native.createNativeBackend();
  } else {
    throw new Error(`backend: expected native, reference or auto, received ${JSON.stringify(name)}`);
  }
  instances.set(name, b);
  return b;
}

/** Sets the default backend for new tensors and returns it. */
export function useBackend(name?: BackendName | string): Backend {
  const chosen = (name ?? process.env.RESNET_BACKEND ?? 'auto') as BackendName;
  if (!['native', 'reference', 'auto'].includes(chosen)) {
    throw new Error(`backend: expected native, reference or auto, received ${JSON.stringify(chosen)}`);
  }
  current = backendByName(chosen);
  return current;
}

/** The default backend (chosen on first use from RESNET_BACKEND, else 'auto'). */
export function getBackend(): Backend {
  return current ?? useBackend();
}

/** Runs fn with `b` as the default backend, restoring the previous default afterwards. */
export function withBackend<T>(b: Backend, fn: () => T): T {
  const prev = current;
  current = b;
  try {
    return fn();
  } finally {
    current = prev;
  }
}

export type { Backend } from './backend';
