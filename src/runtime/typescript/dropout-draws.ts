// Adapter dropout as a description instead of data: the keep mask of one adapted layer is the
// draws offset, offset + 1, … of the step's counter-based generator seeded with `seed` — the
// i-th draw of createRng(seed) (src/reference/random.ts) is a pure function of (seed, i):
//
//   state_i = (seed + (i + 1)·0x9e3779b9) mod 2^32,  z_i = splitmix32(state_i),  kept iff z_i / 2^32 ≥ p
//
// so the model hands each layer { seed, offset } (its counter at the layer's first draw) and
// whoever needs the mask expands it: the host here (TypeScript, native cpu and WebGPU ops, and
// tests), the cuda backend in a kernel (src/backends/cuda/model-ops/dropout.ts), with the same
// integer comparison z_i ≥ ceil(p·2^32) (dropoutThreshold), so the two agree bit for bit and a
// resumed run draws exactly what the uninterrupted one did.
import { splitmix32 } from '../../reference/random.ts';

const GOLDEN = 0x9e3779b9;

/** The keep mask of one layer's pooled input u [rows, L], entry j being draw offset + j of seed's sequence. */
export interface DropoutDraws {
  /** The step's dropout seed, as an unsigned 32-bit integer. */
  readonly seed: number;
  /** Draws of the sequence before this layer's first (a non-negative integer; only its value mod 2^32 matters). */
  readonly offset: number;
}

export function dropoutDraws(seed: number, offset: number): DropoutDraws {
  if (!(Number.isSafeInteger(offset) && offset >= 0)) throw new RangeError(`a dropout offset must be a non-negative integer, got ${offset}`);
  return { seed: seed >>> 0, offset };
}

/** ceil(p·2^32) as a u32: an entry is kept iff its 32-bit draw z ≥ this (z / 2^32 ≥ p, computed exactly: p·2^32 is exact in float64). */
export function dropoutThreshold(p: number): number {
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout probability must be in [0, 1), got ${p}`);
  const threshold = Math.ceil(p * 2 ** 32);
  if (threshold > 0xffffffff) throw new RangeError(`dropout probability ${p} keeps nothing a 32-bit draw can express`);
  return threshold;
}

/** The offset as the kernels' u32 counter base: draws wrap mod 2^32 as the host's state does. */
export const offsetBase = (draws: DropoutDraws): number => draws.offset % 2 ** 32;

/** z of draw `index` of seed's sequence (both u32): the host twin of the dropout kernel's hash. */
export function drawBits(seed: number, index: number): number {
  return splitmix32((seed + Math.imul((index + 1) >>> 0, GOLDEN)) >>> 0);
}

/** Keep (1) / drop (0) for the `length` entries the draws describe, with drop probability p. */
export function expandDropoutMask(draws: DropoutDraws, length: number, p: number): Uint8Array {
  const threshold = dropoutThreshold(p);
  const base = offsetBase(draws);
  const keep = new Uint8Array(length);
  for (let i = 0; i < length; i++) keep[i] = drawBits(draws.seed, (base + i) >>> 0) >= threshold ? 1 : 0;
  return keep;
}

/** What a kept entry is multiplied by: 1/(1−p) in float32, as the multiplier buffers hold it. */
export const keptScale = (p: number): number => Math.fround(1 / (1 - p));
