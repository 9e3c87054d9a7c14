/**
 * A small, fast, seeded and serialisable PRNG: xoshiro128** (Blackman & Vigna), 128 bits of state held as
 * four uint32 words. Everything that must replay exactly on resume (data order, dropout masks, sampling)
 * draws from one of these and saves `state()` in the checkpoint.
 *
 * Why xoshiro128** rather than `Math.random`: reproducible across runs and machines, its state is four
 * plain numbers (JSON-friendly), and it only uses 32-bit integer ops, which V8 runs without allocation.
 */

/** splitmix32 step: turns any 32-bit seed into well-mixed words (used for seeding and hashing). */
function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * Stateless 32-bit hash of two integers (e.g. `hash32(seed, index)`), uniform in [0, 2^32).
 * Used where an assignment must not depend on how many other items exist (e.g. train/val split).
 */
export function hash32(a: number, b: number): number {
  return splitmix32(splitmix32(a | 0) ^ Math.imul(b | 0, 0x27d4eb2d));
}

const TWO_POW_32 = 4294967296;

/** Seeded xoshiro128** generator. */
export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  /** `seed`: any finite number; its integer part (mod 2^32) and high bits are both mixed in. */
  constructor(seed = 0) {
    if (!Number.isFinite(seed)) throw new RangeError(`Rng seed must be a finite number, got ${seed}`);
    const lo = seed >>> 0;
    const hi = Math.floor(seed / TWO_POW_32) >>> 0;
    let x = splitmix32(lo ^ splitmix32(hi));
    this.s0 = x;
    x = splitmix32(x);
    this.s1 = x;
    x = splitmix32(x);
    this.s2 = x;
    x = splitmix32(x);
    this.s3 = x;
    // The all-zero state is a fixed point of xoshiro; splitmix32 cannot produce it for all four words,
    // but guard anyway so a hand-made state can never get stuck.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Creates a generator positioned exactly at a state previously returned by `state()`. */
  static fromState(state: readonly number[]): Rng {
    const r = new Rng(0);
    r.setState(state);
    return r;
  }

  /** The full generator state: four uint32 numbers, JSON-serialisable. */
  state(): number[] {
    return [this.s0, this.s1, this.s2, this.s3];
  }

  /** Restores a state from `state()`. Throws `RangeError` on anything else (4 uint32s, not all zero). */
  setState(state: readonly number[]): void {
    if (
      !Array.isArray(state) ||
      state.length !== 4 ||
      !state.every((w) => Number.isInteger(w) && w >= 0 && w < TWO_POW_32) ||
      state.every((w) => w === 0)
    ) {
      throw new RangeError(`Rng state must be 4 uint32 words, not all zero; got ${JSON.stringify(state)}`);
    }
    [this.s0, this.s1, this.s2, this.s3] = state;
  }

  /** Next uniform uint32 in [0, 2^32). */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    this.s0 >>>= 0;
    this.s1 >>>= 0;
    this.s2 >>>= 0;
    this.s3 >>>= 0;
    return result;
  }

  /** Uniform float in [0, 1) with 32 bits of resolution. */
  nextFloat(): number {
    return this.nextU32() / TWO_POW_32;
  }

  /**
   * Standard normal sample (mean 0, std 1) by Box–Muller. Uses two uniforms per call and discards the
   * second normal so the whole generator state stays the four words of `state()`.
   */
  normal(): number {
    const u1 = 1 - this.nextFloat(); // (0, 1]: log is finite
    const u2 = this.nextFloat();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** Uniform integer in [0, n), unbiased (rejection of the top `2^32 mod n` values). `n` in [1, 2^32]. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32) {
      throw new RangeError(`Rng.int(n) needs an integer n in [1, 2^32], got ${n}`);
    }
    const limit = TWO_POW_32 - (TWO_POW_32 % n); // largest multiple of n that fits; all doubles stay exact
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** Fisher–Yates shuffle in place; returns `arr`. */
  shuffle<T extends { length: number; [i: number]: unknown }>(arr: T): T {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = arr[i];
      arr[i] = arr[j];
      arr[j] = tmp;
    }
    return arr;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
