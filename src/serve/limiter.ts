/**
 * A bound on concurrent inferences: a request either gets a slot at once or is refused (the server answers
 * 503 with Retry-After), so that a burst of uploads cannot queue unbounded work or memory.
 *
 * What it is not: a queue. Waiting would only move the overload from memory into latency; a client can retry.
 * Reference: TorchServe job_queue_size (503 when full).
 */

export class ConcurrencyLimiter {
  private active = 0;

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) {
      throw new Error(`ConcurrencyLimiter: expected max to be a positive integer, received ${max}`);
    }
  }

  get inFlight(): number {
    return this.active;
  }

  /** A release function when a slot is free (call it exactly once), or null when all `max` are taken. */
  tryAcquire(): (() => void) | null {
    if (this.active >= this.max) return null;
    this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
    };
  }
}

/**
 * The same bound per key (a client address): one client cannot take every upload slot, so that slow or
 * hostile uploads from one address leave the others served. Keys with nothing in flight are forgotten.
 */
export class PerKeyLimiter {
  private readonly active = new Map<string, number>();

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) {
      throw new Error(`PerKeyLimiter: expected max to be a positive integer, received ${max}`);
    }
  }

  inFlight(key: string): number {
    return this.active.get(key) ?? 0;
  }

  /** A release function when `key` holds fewer than `max` slots (call it exactly once), or null. */
  tryAcquire(key: string): (() => void) | null {
    const n = this.inFlight(key);
    if (n >= this.max) return null;
    this.active.set(key, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = this.inFlight(key) - 1;
      if (left > 0) this.active.set(key, left);
      else this.active.delete(key);
    };
  }
}
