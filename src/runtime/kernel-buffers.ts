// Host-side layouts of the compiled kernels' frozen and adapter buffers (none depends on the
// activation type): qweight, the parts each manifest entry lists for groupScalesAndZeros and
// adapterWeights, and the dropout multipliers. Shared by the cuda and webgpu runtimes.
import { packQweight } from '../quant/gptq-pack.ts';
import type { QuantizedWeight } from '../quant/quantized-weight.ts';
import { type DropoutDraws, expandDropoutMask, keptScale } from './typescript/dropout-draws.ts';

/**
 * GPTQ v1 qweight (src/quant/gptq-pack.ts: column o one little-endian bit stream, 3-bit codes
 * straddling words) as uint32 [wordRows, N]; rows past ⌈K·b/32⌉ (a kernel's padded K) stay zero.
 */
export function kernelQweight(weight: Pick<QuantizedWeight, 'q' | 'inFeatures' | 'outFeatures' | 'bits'>, wordRows?: number): Uint32Array {
  const packed = packQweight(weight.q, weight.inFeatures, weight.outFeatures, weight.bits);
  const rows = wordRows ?? packed.length / weight.outFeatures;
  if (rows * weight.outFeatures < packed.length) throw new RangeError(`qweight needs ${packed.length / weight.outFeatures} word rows, the kernel has ${rows}`);
  const words = new Uint32Array(rows * weight.outFeatures);
  words.set(new Uint32Array(packed.buffer, packed.byteOffset, packed.length));
  return words;
}

/** groupScalesAndZeros: s [L, N] then z [L, N], as float32. */
export function packScalesAndZeros(weight: Pick<QuantizedWeight, 'scales' | 'zeros'>): Float32Array {
  const packed = new Float32Array(weight.scales.length + weight.zeros.length);
  packed.set(weight.scales, 0);
  packed.set(weight.zeros, weight.scales.length);
  return packed;
}

/** Arrays back to back, as float32: adapterWeights is A [L, r] then B [r, N]. */
export function packParts(parts: readonly ArrayLike<number>[]): Float32Array {
  const target = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    for (let i = 0; i < part.length; i++) target[offset + i] = part[i]!;
    offset += part.length;
  }
  return target;
}

/**
 * dropoutMultiplier (and the op kernels' keep-scales), expanded on the host: per pooled entry
 * 1/(1−p) kept, 0 dropped, 1 without a mask — src/runtime/typescript/qalora-linear.ts's
 * dropScale. The cuda backend computes the same values on the device (the dropout model op).
 */
export function keepScales(mask: DropoutDraws | undefined, length: number, p: number): Float32Array {
  if (mask === undefined) return new Float32Array(length).fill(1);
  const keep = expandDropoutMask(mask, length, p);
  const kept = keptScale(p);
  // A plain loop: Float32Array.from with a mapping function is ~10× slower in V8, and this runs
  // for every adapter's forward and backward (550 ms of a 7B-shaped step at 4 blocks).
  const scales = new Float32Array(length);
  for (let i = 0; i < length; i++) scales[i] = keep[i] ? kept : 0;
  return scales;
}
