// A tiny seeded generator so that test data is the same on every machine and in every backend's
// test (Math.random cannot be seeded). splitmix32: one 32-bit state, full period 2^32, passes
// the statistical tests that matter for test data; not for cryptography.

export interface Rng {
  /** Uniform in [0, 1), 32 bits of resolution. */
  next(): number;
  /** Uniform in [low, high). */
  uniform(low: number, high: number): number;
  /** Integer uniform in [0, n). */
  int(n: number): number;
  /** Standard normal (Box–Muller). */
  normal(): number;
}

/**
 * The output hash of one state, as an unsigned 32-bit integer. The n-th draw (from 1) of
 * createRng(seed) is splitmix32(seed + n·0x9e3779b9 mod 2^32) / 2^32: counter-based, so any draw
 * can be computed without the ones before it (adapter dropout on the device does:
 * src/runtime/typescript/dropout-draws.ts).
 */
export function splitmix32(state: number): number {
  let z = state;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  z ^= z >>> 15;
  return z >>> 0;
}

export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x9e3779b9) >>> 0;
    return splitmix32(state) / 4294967296;
  };
  return {
    next,
    uniform: (low, high) => low + (high - low) * next(),
    int: (n) => Math.floor(next() * n),
    normal: () => {
      const radius = Math.sqrt(-2 * Math.log(1 - next())); // 1 − next() ∈ (0, 1]: no log(0)
      return radius * Math.cos(2 * Math.PI * next());
    },
  };
}

/** A rows×cols row-major matrix of N(0, scale²) entries. */
export function randomNormalMatrix(rng: Rng, rows: number, cols: number, scale = 1): Float64Array {
  return Float64Array.from({ length: rows * cols }, () => scale * rng.normal());
}

