// ggml's Q4_1 blocks: 32 consecutive values of one row share an fp16 scale d and an fp16 offset
// m, x = d·q + m with 4-bit q. This is exactly the float-offset form of a 4-bit group whose zero
// is fractional (QALORA.md: Ŵ = s·q + m, m = −s·z'), so a merged QA-LoRA layer with a group of
// 32, or of any multiple of 32 (its (d, m) repeated over its 32-blocks), is stored with no loss
// but fp16's rounding of d and m. Layout of one 20-byte block (block_q4_1 in ggml-common.h):
// d (fp16, rounded to nearest even as ggml's GGML_FP32_TO_FP16), m (fp16), qs[16] with value j in the low nibble of qs[j] and value j+16 in its high
// nibble. Rows are the outputs (ne1), blocks run along the inputs (ne0 = K).
import type { QuantizedWeight } from '../../quant/quantized-weight.ts';
import { f16Bits as halfBits, f16Value as halfValue } from '../../runtime/cuda/host-data.ts';

export const Q4_1_BLOCK_VALUES = 32;
export const Q4_1_BLOCK_BYTES = 20;

/** Why a quantized weight has no exact Q4_1 form, or undefined when it has one. */
export function q4_1Misfit(weight: QuantizedWeight): string | undefined {
  if (weight.bits !== 4) return `${weight.bits}-bit codes (Q4_1 holds 4-bit ones)`;
  if (weight.groupSize % Q4_1_BLOCK_VALUES !== 0) return `group ${weight.groupSize} is not a multiple of Q4_1's 32-value blocks`;
  return undefined;
}

export interface Q4_1Encoding {
  readonly bytes: Uint8Array;
  /** max |(fp16(d)·q + fp16(m)) − s·(q − z')| over the weight: fp16's rounding, all of the loss. */
  readonly maxAbsError: number;
}

/** The weight as Q4_1 rows (one per output), in the weight's own output order. */
export function encodeQ4_1(weight: QuantizedWeight): Q4_1Encoding {
  const misfit = q4_1Misfit(weight);
  if (misfit) throw new RangeError(`no exact Q4_1 form: ${misfit}`);
  const { inFeatures: K, outFeatures: N, groupSize, q, scales, zeros } = weight;
  const blocksPerRow = K / Q4_1_BLOCK_VALUES;
  const bytes = new Uint8Array(N * blocksPerRow * Q4_1_BLOCK_BYTES);
  const view = new DataView(bytes.buffer);
  let maxAbsError = 0;
  for (let o = 0; o < N; o++) {
    for (let b = 0; b < blocksPerRow; b++) {
      const group = Math.floor((b * Q4_1_BLOCK_VALUES) / groupSize);
      const s = scales[group * N + o]!;
      const z = zeros[group * N + o]!;
      const d = halfBits(s);
      const m = halfBits(-s * z);
      const at = (o * blocksPerRow + b) * Q4_1_BLOCK_BYTES;
      view.setUint16(at, d, true);
      view.setUint16(at + 2, m, true);
      const dv = halfValue(d);
      const mv = halfValue(m);
      for (let j = 0; j < Q4_1_BLOCK_VALUES; j++) {
        const code = q[(b * Q4_1_BLOCK_VALUES + j) * N + o]!;
        if (j < 16) bytes[at + 4 + j] = code;
        else bytes[at + 4 + j - 16]! |= code << 4;
        maxAbsError = Math.max(maxAbsError, Math.abs(dv * code + mv - s * (code - z)));
      }
    }
  }
  return { bytes, maxAbsError };
}

/** Q4_1 rows back to float32 [rows, cols], as ggml's dequantize_row_q4_1 computes them. */
export function decodeQ4_1(bytes: Uint8Array, rows: number, cols: number): Float32Array {
  const blocksPerRow = cols / Q4_1_BLOCK_VALUES;
  if (!Number.isInteger(blocksPerRow) || bytes.length !== rows * blocksPerRow * Q4_1_BLOCK_BYTES) {
    throw new RangeError(`${bytes.length} bytes are not ${rows} Q4_1 rows of ${cols} values`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(rows * cols);
  for (let block = 0; block < rows * blocksPerRow; block++) {
    const at = block * Q4_1_BLOCK_BYTES;
    const d = Math.fround(halfValue(view.getUint16(at, true)));
    const m = Math.fround(halfValue(view.getUint16(at + 2, true)));
    for (let j = 0; j < 16; j++) {
      const packed = bytes[at + 4 + j]!;
      out[block * 32 + j] = Math.fround(Math.fround((packed & 0x0f) * d) + m);
      out[block * 32 + j + 16] = Math.fround(Math.fround((packed >> 4) * d) + m);
    }
  }
  return out;
}
