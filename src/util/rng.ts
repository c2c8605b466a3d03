/**
 * Seeded pseudo-random numbers with a serialisable state.
 *
 * - `Rng`: a sequential generator (xoshiro128**, Blackman & Vigna 2018) seeded through splitmix32; used for
 *   weight initialisation. `state()`/`Rng.fromState()` snapshot and restore it exactly (checkpoints).
 * - `hashSeed(...keys)`: a stateless 32-bit mix of integers, so that a random choice can be derived from
 *   (seed, epoch, sample index) alone and never depends on thread count or timing.
 * Not cryptographic.
 */

function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Mixes any number of 32-bit integers into one well-spread 32-bit value. */
export function hashSeed(...keys: number[]): number {
  let h = 0x1234567;
  for (const k of keys) {
    h = splitmix32(h ^ splitmix32(k >>> 0));
    h = splitmix32(h + (Math.floor(k / 4294967296) >>> 0));
  }
  return h >>> 0;
}

export class Rng {
  private s: Uint32Array;

  constructor(seed: number) {
    this.s = new Uint32Array(4);
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = splitmix32(x + i * 0x632be5ab);
      this.s[i] = x;
    }
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1;
  }

  static fromState(state: readonly number[]): Rng {
    if (state.length !== 4) throw new Error(`Rng.fromState: expected 4 words, received ${state.length}`);
    const r = new Rng(0);
    r.s.set(state.map((v) => v >>> 0));
    return r;
  }

  state(): number[] {
    return Array.from(this.s);
  }

  /** uniform 32-bit unsigned integer */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** uniform in [0, 1) with 53 random bits */
  uniform(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** uniform in [lo, hi) */
  uniformRange(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  /** standard normal (Box-Muller) */
  normal(): number {
    let u = this.uniform();
    while (u === 0) u = this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.uniform());
  }

  /** integer in [0, n) */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
