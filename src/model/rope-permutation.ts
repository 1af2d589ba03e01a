// Hugging Face stores the q and k projections with each head's rows reordered for its
// rotate-half RoPE (dimension i pairs with i + head/2); llama2.c, GGUF and qalc rotate adjacent
// pairs (2p, 2p + 1). qalc keeps the llama2.c order inside and converts at the file's edge.
// Within a head of `head` rows: llama2.c row 2p + a is Hugging Face row a · head/2 + p.
import type { Architecture } from './architecture.ts';
import type { QuantizedWeight } from '../quant/quantized-weight.ts';
import type { ProjectionName } from '../train/qalora-spec.ts';

/** Heads whose rows RoPE rotates (q and k), or undefined for the other projections. */
export function rotaryHeads(arch: Architecture, projection: ProjectionName): number | undefined {
  return projection === 'q' ? arch.heads : projection === 'k' ? arch.kvHeads : undefined;
}

/** Hugging Face rows → llama2.c rows, for a [heads · head, cols] matrix. */
export function unpermuteFromHf(w: Float32Array, heads: number, cols: number): Float32Array {
  return reorder(w, heads, cols, true);
}

/** llama2.c rows → Hugging Face rows (what transformers' conversion script does). */
export function permuteToHf(w: Float32Array, heads: number, cols: number): Float32Array {
  return reorder(w, heads, cols, false);
}

function reorder(w: Float32Array, heads: number, cols: number, toLlama2c: boolean): Float32Array {
  const rows = w.length / cols;
  const head = rows / heads;
  if (!Number.isInteger(rows) || !Number.isInteger(head) || head % 2 !== 0) throw new RangeError(`cannot reorder ${rows} rows as ${heads} heads of even size`);
  const out = new Float32Array(w.length);
  const half = head / 2;
  for (let h = 0; h < heads; h++) {
    for (let p = 0; p < half; p++) {
      for (let a = 0; a < 2; a++) {
        const llama = h * head + 2 * p + a;
        const hf = h * head + a * half + p;
        const [from, to] = toLlama2c ? [hf, llama] : [llama, hf];
        out.set(w.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return out;
}

/**
 * For each Hugging Face row (output feature) of a [heads · head]-row projection, the llama2.c
 * row it holds: `hfOrder[hf] = llama`. Used to move the output columns of an input-major
 * (K×N) quantized weight, whose codes, scales and zeros all follow the output order.
 */
export function hfRowOrder(rows: number, heads: number): Int32Array {
  const head = rows / heads;
  if (!Number.isInteger(head) || head % 2 !== 0) throw new RangeError(`cannot reorder ${rows} rows as ${heads} heads of even size`);
  const half = head / 2;
  const order = new Int32Array(rows);
  for (let h = 0; h < heads; h++) {
    for (let p = 0; p < half; p++) {
      for (let a = 0; a < 2; a++) order[h * head + a * half + p] = h * head + 2 * p + a;
    }
  }
  return order;
}

/** The columns of a row-major [rows, cols] array taken in `order`: out[:, j] = m[:, order[j]]. */
export function takeColumns<T extends Uint8Array | Float64Array | Float32Array>(m: T, cols: number, order: Int32Array, make: (n: number) => T): T {
  const rows = m.length / cols;
  const out = make(m.length);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) out[r * cols + j] = m[r * cols + order[j]!]!;
  }
  return out;
}

/** The inverse of a permutation: inverse[order[j]] = j. */
export function inversePermutation(order: Int32Array): Int32Array {
  const inverse = new Int32Array(order.length);
  order.forEach((from, to) => { inverse[from] = to; });
  return inverse;
}

/** A quantized weight with its output columns taken in `order` (out[:, j] = in[:, order[j]]): codes, scales and zeros alike. */
export function reorderOutputColumns(weight: QuantizedWeight, order: Int32Array): QuantizedWeight {
  const N = weight.outFeatures;
  return {
    ...weight,
    q: takeColumns(weight.q, N, order, (n) => new Uint8Array(n)),
    scales: takeColumns(weight.scales, N, order, (n) => new Float64Array(n)),
    zeros: takeColumns(weight.zeros, N, order, (n) => new Float64Array(n)),
  };
}
