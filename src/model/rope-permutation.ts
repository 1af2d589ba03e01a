// Hugging Face stores the q and k projections with each head's rows reordered for its
// rotate-half RoPE (dimension i pairs with i + head/2); llama2.c, GGUF and qalc rotate adjacent
// pairs (2p, 2p + 1). qalc keeps the llama2.c order inside and converts at the file's edge.
// Within a head of `head` rows: llama2.c row 2p + a is Hugging Face row a · head/2 + p.

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
 * For each llama2.c row of a [heads · head, …] projection, the Hugging Face row it comes from;
 * for tensors whose rotary dimension is a column (GPTQ's input-major qweight, scales, zeros).
 */
export function hfRowOfLlama2cRow(heads: number, rows: number): Int32Array {
  const head = rows / heads;
  if (!Number.isInteger(head) || head % 2 !== 0) throw new RangeError(`cannot reorder ${rows} rows as ${heads} heads of even size`);
  const half = head / 2;
  const from = new Int32Array(rows);
  for (let h = 0; h < heads; h++) {
    for (let p = 0; p < half; p++) {
      for (let a = 0; a < 2; a++) from[h * head + 2 * p + a] = h * head + a * half + p;
    }
  }
  return from;
}
