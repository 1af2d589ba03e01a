// Every random choice of a training step — which windows it reads, which adapter inputs it
// drops — comes from a seed derived from (run seed, step, purpose). A run therefore has no
// random state to carry: resuming at step s draws exactly what the uninterrupted run drew.

/** A 32-bit hash of the three numbers (splitmix-style finalizer on each). */
export function stepSeed(seed: number, step: number, purpose: 'batch' | 'dropout' | 'init' | 'calibration'): number {
  let h = (seed >>> 0) ^ 0x9e3779b9;
  for (const v of [step, purpose === 'batch' ? 1 : purpose === 'dropout' ? 2 : purpose === 'init' ? 3 : 4]) {
    h = Math.imul(h ^ (v >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}
