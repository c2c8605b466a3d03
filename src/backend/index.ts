/**
 * Backend registry: which kernel implementation tensors are created on.
 *
 * A backend is registered under a name with a factory and an availability check (`registerBackend`); the two
 * built in are `native` (the oneDNN addon) and `reference` (plain TypeScript, always available). `auto` (the
 * default) is the first available backend in preference order — native, then reference — with one warning, when it
 * falls past the first, that says why (for native: how to build the addon). A new backend (say a GPU one) joins by
 * registering, with an `autoRank` if `auto` should consider it. The environment variable RESNET_BACKEND (a
 * registered name or auto) sets the default for a whole process.
 *
 * Not a plugin loader: registration is a function call, from code that imports this module.
 */
import type { Backend } from './backend';
import { createReferenceBackend } from './reference';

/** A registered name, or 'auto'. Kept a string so that registered backends need no change here. */
export type BackendName = 'native' | 'reference' | 'auto' | (string & {});

export type BackendAvailability = { ok: true } | { ok: false; reason: string };

export interface BackendEntry {
  /** Creates the backend; called once per process, only when `available()` said ok. */
  factory: () => Backend;
  /** Whether the backend can run here, and if not why (what to install or build). Cheap; may be called often. */
  available: () => BackendAvailability;
  /** Where `auto` tries it: lower first. Left out, `auto` never picks it (it is used only by name). */
  autoRank?: number;
}

const registry = new Map<string, BackendEntry>();
const instances = new Map<string, Backend>();
let current: Backend | null = null;
let warnedFallback = false;

/** Registers a backend under `name`; a name can be registered once ('auto' is reserved). */
export function registerBackend(name: string, entry: BackendEntry): void {
  if (name === 'auto' || !/^[a-z][a-z0-9-]*$/.test(name)) {
    throw new Error(`registerBackend: expected a lower-case name other than auto, received ${JSON.stringify(name)}`);
  }
  if (registry.has(name)) throw new Error(`registerBackend: a backend named ${name} is already registered`);
  registry.set(name, entry);
}

/** The registered backend names, in `auto`'s preference order first, then the ones `auto` does not consider. */
export function registeredBackends(): string[] {
  const ranked = [...registry].filter(([, e]) => e.autoRank !== undefined);
  ranked.sort((a, b) => (a[1].autoRank as number) - (b[1].autoRank as number));
  const rest = [...registry].filter(([, e]) => e.autoRank === undefined);
  return [...ranked, ...rest].map(([n]) => n);
}

function entryOf(name: string): BackendEntry {
  const entry = registry.get(name);
  if (!entry) {
    throw new Error(`backend: expected one of ${[...registeredBackends(), 'auto'].join(', ')}, received ${JSON.stringify(name)}`);
  }
  return entry;
}

/** Availability of a backend, never throwing: a check that throws counts as unavailable with its message. */
function availabilityOf(entry: BackendEntry): BackendAvailability {
  try {
    return entry.available();
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
}

/** The reason the backend `name` cannot be used here, or null when it can; throws for an unknown name. */
export function backendUnavailableReason(name: string): string | null {
  const status = availabilityOf(entryOf(name));
  return status.ok ? null : status.reason;
}

/** The reason the native backend cannot be used, or null when it can. */
export function nativeUnavailableReason(): string | null {
  return backendUnavailableReason('native');
}

/** The first available backend in auto's order; warns once when that is not the first of the order. */
function resolveAuto(): string {
  const order = registeredBackends().filter((n) => registry.get(n)?.autoRank !== undefined);
  let firstReason: string | null = null;
  for (const name of order) {
    const reason = backendUnavailableReason(name);
    if (reason === null) {
      if (firstReason !== null && !warnedFallback) {
        warnedFallback = true;
        const slow = name === 'reference' ? 'slow reference' : name;
        process.stderr.write(`resnet: using the ${slow} backend: ${firstReason}\n`);
      }
      return name;
    }
    firstReason ??= reason;
  }
  throw new Error(`backend: auto found no available backend among ${order.join(', ')}: ${firstReason}`);
}

/** Returns the backend of that name (created once per process). 'auto' resolves as described above. */
export function backendByName(name: BackendName): Backend {
  const resolved = name === 'auto' ? resolveAuto() : name;
  const cached = instances.get(resolved);
  if (cached) return cached;
  const entry = entryOf(resolved);
  const status = availabilityOf(entry);
  if (!status.ok) throw new Error(`${resolved} backend unavailable: ${status.reason}`);
  const b = entry.factory();
  instances.set(resolved, b);
  return b;
}

/** Sets the default backend for new tensors and returns it. */
export function useBackend(name?: BackendName): Backend {
  current = backendByName(name ?? process.env.RESNET_BACKEND ?? 'auto');
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

// The native binding is required lazily: loading it looks for the addon, which a reference-only process never needs.
registerBackend('native', {
  autoRank: 10,
  available: () => (require('./native') as typeof import('./native')).nativeAvailable(),
  factory: () => (require('./native') as typeof import('./native')).createNativeBackend(),
});
registerBackend('reference', { autoRank: 100, available: () => ({ ok: true }), factory: createReferenceBackend });

export type { Backend } from './backend';
