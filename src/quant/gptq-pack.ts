// The GPTQ "v1" on-disk layout (AutoGPTQ, transformers, vLLM) of qweight and qzeros.
//
// Both tensors are int32 words filled with b-bit codes as one little-endian bit stream: code j
// of a run occupies stream bits j·b … j·b+b−1, and stream bit p is bit (p mod 32) of word
// ⌊p/32⌋. For b = 2, 4, 8 a code never straddles two words (32/b codes per word, code 0 in the
// lowest bits). For b = 3 it is the same stream, which is exactly what AutoGPTQ's packing loop
// spells out for 32 codes in 3 words:
//
//   word 0: codes 0…9 in bits 0…29 (code j at 3j), bits 0–1 of code 10 in bits 30–31
//   word 1: bit 2 of code 10 in bit 0, codes 11…20 at bits 3(j−11)+1, bit 0 of code 21 in bit 31
//   word 2: bits 1–2 of code 21 in bits 0–1, codes 22…31 at bits 3(j−22)+2
//
// i.e. code j starts at stream bit 3j, codes 10 and 21 straddling words 0|1 and 1|2.
//
// qweight [⌈K·b/32⌉, N] packs along the input dim: column o of qweight is the stream of column
// o of q (inputs 0…K−1). qzeros [L, ⌈N·b/32⌉] packs along the output dim: row k of qzeros is
// the stream of z[k, 0…N−1] − 1 (v1 stores z − 1; v2 / "gptq_v2" stores z: ZeroFormat).
//
// AutoGPTQ requires K·b and N·b to be multiples of 32. Here a run whose bit length is not a
// multiple of 32 is padded with zero bits up to the next word, so the last word holds only the
// codes that exist; for K·b or N·b multiples of 32 this is exactly AutoGPTQ's layout.
//
// Words are Int32Array, like the int32 tensors on disk; bit 31 is the sign bit there, so reads
// go through `>>>` (unsigned) and writes of bit 31 rely on `<<` wrapping to a negative int32.
import { maxCode, SUPPORTED_BITS, type Bits } from './quantized-weight.ts';

/** Words needed for `count` codes of `bits` bits: ⌈count·b/32⌉. */
export function packedWords(count: number, bits: Bits): number {
  return Math.ceil((count * bits) / 32);
}

// Writes code `value` as code number `index` of the stream whose word j is words[base + j·stride].
function writeCode(words: Int32Array, base: number, stride: number, index: number, bits: Bits, value: number): void {
  const bit = index * bits;
  const word = bit >>> 5;
  const shift = bit & 31;
  words[base + word * stride] |= value << shift; // bits that fall past bit 31 are dropped here…
  if (shift + bits > 32) {
    words[base + (word + 1) * stride] |= value >>> (32 - shift); // …and written to the next word
  }
}

function readCode(words: Int32Array, base: number, stride: number, index: number, bits: Bits): number {
  const bit = index * bits;
  const word = bit >>> 5;
  const shift = bit & 31;
  let value = words[base + word * stride] >>> shift;
  if (shift + bits > 32) value |= words[base + (word + 1) * stride] << (32 - shift);
  return value & maxCode(bits);
}

function checkBits(bits: number): asserts bits is Bits {
  if (!SUPPORTED_BITS.includes(bits as Bits)) throw new RangeError(`bits must be one of ${SUPPORTED_BITS.join(', ')}, got ${bits}`);
}

/** q (K×N codes) → qweight int32 [⌈K·b/32⌉, N]. */
export function packQweight(q: Uint8Array, inFeatures: number, outFeatures: number, bits: Bits): Int32Array {
  checkBits(bits);
  if (q.length !== inFeatures * outFeatures) throw new RangeError(`q has ${q.length} codes, expected ${inFeatures}×${outFeatures}`);
  const limit = maxCode(bits);
  const words = new Int32Array(packedWords(inFeatures, bits) * outFeatures);
  for (let i = 0; i < inFeatures; i++) {
    for (let o = 0; o < outFeatures; o++) {
      const code = q[i * outFeatures + o];
      if (code > limit) throw new RangeError(`q[${i}, ${o}] = ${code} does not fit in ${bits} bits`);
      writeCode(words, o, outFeatures, i, bits, code);
    }
  }
  return words;
}

/** qweight int32 [⌈K·b/32⌉, N] → q (K×N codes). Padding bits are ignored. */
export function unpackQweight(qweight: Int32Array, inFeatures: number, outFeatures: number, bits: Bits): Uint8Array {
  checkBits(bits);
  const expected = packedWords(inFeatures, bits) * outFeatures;
  if (qweight.length !== expected) throw new RangeError(`qweight has ${qweight.length} words, expected ${expected}`);
  const q = new Uint8Array(inFeatures * outFeatures);
  for (let i = 0; i < inFeatures; i++) {
    for (let o = 0; o < outFeatures; o++) q[i * outFeatures + o] = readCode(qweight, o, outFeatures, i, bits);
  }
  return q;
}

/**
 * How a checkpoint stores a zero z: GPTQ v1 (`gptq`: AutoGPTQ, transformers, vLLM) stores z − 1,
 * so z ∈ [1, 2^b]; GPTQModel's `gptq_v2` stores z itself, z ∈ [0, 2^b − 1].
 */
export type ZeroFormat = 'gptq' | 'gptq_v2';

/** The integer zeros a format can store. */
export function storableZeros(bits: Bits, format: ZeroFormat): { lowest: number; highest: number } {
  return format === 'gptq' ? { lowest: 1, highest: maxCode(bits) + 1 } : { lowest: 0, highest: maxCode(bits) };
}

/**
 * Integer zeros z (L×N) → qzeros int32 [L, ⌈N·b/32⌉] holding z − 1 (v1) or z (v2).
 * z = 0, which RTN produces for an all-non-negative group, has no v1 encoding (AutoGPTQ would
 * store −1 and corrupt the neighbouring codes); it is refused rather than silently wrapped.
 * Round or clamp first (merge.ts, roundZerosForGptq).
 */
export function packQzeros(zeros: ArrayLike<number>, groups: number, outFeatures: number, bits: Bits, format: ZeroFormat = 'gptq'): Int32Array {
  checkBits(bits);
  if (zeros.length !== groups * outFeatures) throw new RangeError(`zeros has ${zeros.length} entries, expected ${groups}×${outFeatures}`);
  const { lowest, highest } = storableZeros(bits, format);
  const wordsPerRow = packedWords(outFeatures, bits);
  const words = new Int32Array(groups * wordsPerRow);
  for (let k = 0; k < groups; k++) {
    for (let o = 0; o < outFeatures; o++) {
      const z = zeros[k * outFeatures + o];
      if (!Number.isInteger(z) || z < lowest || z > highest) {
        throw new RangeError(`zero[${k}, ${o}] = ${z} has no GPTQ ${format === 'gptq' ? 'v1' : 'v2'} encoding: it must be an integer in [${lowest}, ${highest}]`);
      }
      writeCode(words, k * wordsPerRow, 1, o, bits, z - lowest);
    }
  }
  return words;
}

/** qzeros int32 [L, ⌈N·b/32⌉] → zeros z (L×N), adding back the 1 that v1 subtracts. */
export function unpackQzeros(qzeros: Int32Array, groups: number, outFeatures: number, bits: Bits, format: ZeroFormat = 'gptq'): Float64Array {
  checkBits(bits);
  const wordsPerRow = packedWords(outFeatures, bits);
  if (qzeros.length !== groups * wordsPerRow) throw new RangeError(`qzeros has ${qzeros.length} words, expected ${groups * wordsPerRow}`);
  const { lowest } = storableZeros(bits, format);
  const zeros = new Float64Array(groups * outFeatures);
  for (let k = 0; k < groups; k++) {
    for (let o = 0; o < outFeatures; o++) zeros[k * outFeatures + o] = readCode(qzeros, k * wordsPerRow, 1, o, bits) + lowest;
  }
  return zeros;
}

/** g_idx int32 [K] for desc_act = false: input i belongs to group ⌊i/g⌋. */
export function sequentialGroupIndex(inFeatures: number, groupSize: number): Int32Array {
  if (inFeatures % groupSize !== 0) throw new RangeError(`group size ${groupSize} does not divide in_features ${inFeatures}`);
  return Int32Array.from({ length: inFeatures }, (_, i) => Math.floor(i / groupSize));
}
