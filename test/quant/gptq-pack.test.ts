import { describe, expect, it } from 'vitest';
import { packQweight, packQzeros, packedWords, sequentialGroupIndex, unpackQweight, unpackQzeros } from '../../src/quant/gptq-pack.ts';
import { maxCode, type Bits } from '../../src/quant/quantized-weight.ts';
import { createRng } from '../../src/reference/random.ts';

const ALL_BITS: Bits[] = [2, 3, 4, 8];

function randomCodes(seed: number, count: number, bits: Bits): Uint8Array {
  const rng = createRng(seed);
  // Bias toward the extreme codes: all-ones codes are what sets bit 31 and straddles words.
  return Uint8Array.from({ length: count }, () => (rng.next() < 0.3 ? maxCode(bits) : rng.int(maxCode(bits) + 1)));
}

// AutoGPTQ's 3-bit packing loop (qlinear pack(), one group of 32 input rows), transcribed line
// by line as an independent check of the bit-stream formulation in gptq-pack.ts.
function autoGptqPack3(intweight: Uint8Array, rows: number, cols: number): Int32Array {
  const qweight = new Uint32Array((rows / 32) * 3 * cols);
  const at = (row: number, o: number) => row * cols + o;
  for (let o = 0; o < cols; o++) {
    let i = 0;
    let row = 0;
    const w = (j: number) => intweight[j * cols + o];
    while (row < (rows / 32) * 3) {
      for (let j = i; j < i + 10; j++) qweight[at(row, o)] |= w(j) << (3 * (j - i));
      i += 10;
      qweight[at(row, o)] |= w(i) << 30;
      row += 1;
      qweight[at(row, o)] |= (w(i) >> 2) & 1;
      i += 1;
      for (let j = i; j < i + 10; j++) qweight[at(row, o)] |= w(j) << (3 * (j - i) + 1);
      i += 10;
      qweight[at(row, o)] |= w(i) << 31;
      row += 1;
      qweight[at(row, o)] |= (w(i) >> 1) & 0x3;
      i += 1;
      for (let j = i; j < i + 10; j++) qweight[at(row, o)] |= w(j) << (3 * (j - i) + 2);
      i += 10;
      row += 1;
    }
  }
  return new Int32Array(qweight.buffer);
}

describe('qweight packing', () => {
  it('4 bits: input row 8r+j in bits 4j…4j+3, lowest input in the lowest nibble, bit 31 as the sign', () => {
    const q = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]); // K = 8, N = 1
    const packed = packQweight(q, 8, 1, 4);
    expect(Array.from(packed)).toEqual([0x87654321 | 0]);
    expect(packed[0]).toBeLessThan(0);
  });

  it('2 and 8 bits: hand-packed words', () => {
    expect(Array.from(packQweight(Uint8Array.from([3, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]), 16, 1, 2))).toEqual([0xc0000093 | 0]);
    expect(Array.from(packQweight(Uint8Array.from([0x01, 0x23, 0x45, 0xff, 0x80]), 5, 1, 8))).toEqual([0xff452301 | 0, 0x80]);
  });

  it('3 bits: 32 codes in 3 words, codes 10 and 21 straddling word boundaries (hand-packed)', () => {
    const one = (index: number, value: number) => {
      const q = new Uint8Array(32);
      q[index] = value;
      return Array.from(packQweight(q, 32, 1, 3));
    };
    expect(Array.from(packQweight(new Uint8Array(32).fill(7), 32, 1, 3))).toEqual([-1, -1, -1]);
    expect(one(0, 5)).toEqual([5, 0, 0]);
    expect(one(9, 7)).toEqual([7 << 27, 0, 0]);
    expect(one(10, 0b101)).toEqual([0x40000000, 1, 0]); // bits 0–1 → word 0 bits 30–31, bit 2 → word 1 bit 0
    expect(one(10, 0b011)).toEqual([0xc0000000 | 0, 0, 0]);
    expect(one(11, 1)).toEqual([0, 0b10, 0]);
    expect(one(21, 0b101)).toEqual([0, 0x80000000 | 0, 0b10]); // bit 0 → word 1 bit 31, bits 1–2 → word 2 bits 0–1
    expect(one(22, 1)).toEqual([0, 0, 0b100]);
    expect(one(31, 7)).toEqual([0, 0, 7 << 29]);
    // q[j] = (5j + 3) mod 8, packed by running AutoGPTQ's loop in Python.
    const pattern = Uint8Array.from({ length: 32 }, (_, j) => (5 * j + 3) % 8);
    expect(Array.from(packQweight(pattern, 32, 1, 3))).toEqual([1137079619, 1967375989, -965393466]);
  });

  it('3 bits: bit-exact with AutoGPTQ\'s packing loop on random codes, several columns', () => {
    const [K, N] = [96, 7];
    const q = randomCodes(3, K * N, 3);
    expect(Array.from(packQweight(q, K, N, 3))).toEqual(Array.from(autoGptqPack3(q, K, N)));
  });

  for (const bits of ALL_BITS) {
    for (const K of [1, 31, 32, 33, 37, 96, 100, 37 * 11]) {
      for (const N of [1, 5, 33]) {
        it(`${bits} bits, K=${K}, N=${N}: [⌈K·b/32⌉, N] words, round trip, zero padding`, () => {
          const q = randomCodes(K * 100 + N * 7 + bits, K * N, bits);
          const packed = packQweight(q, K, N, bits);
          const rows = Math.ceil((K * bits) / 32);
          expect(packed.length).toBe(rows * N);
          expect(unpackQweight(packed, K, N, bits)).toEqual(q);
          const usedBitsInLastRow = K * bits - (rows - 1) * 32;
          if (usedBitsInLastRow < 32) {
            for (let o = 0; o < N; o++) expect(packed[(rows - 1) * N + o] >>> usedBitsInLastRow).toBe(0);
          }
        });
      }
    }
  }

  it('refuses codes that do not fit', () => {
    expect(() => packQweight(Uint8Array.from([16]), 1, 1, 4)).toThrow(/fit/);
  });
});

describe('qzeros packing', () => {
  it('packs along the output dim and stores z − 1', () => {
    const zeros = Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8, 16, 16, 16, 16, 16, 16, 16, 16]); // L = 2, N = 8
    const packed = packQzeros(zeros, 2, 8, 4);
    expect(Array.from(packed)).toEqual([0x76543210, -1]);
    expect(unpackQzeros(packed, 2, 8, 4)).toEqual(zeros);
  });

  for (const bits of ALL_BITS) {
    for (const N of [1, 5, 33, 64]) {
      it(`${bits} bits, N=${N}: [L, ⌈N·b/32⌉] words, round trip over the full range [1, 2^b]`, () => {
        const L = 3;
        const rng = createRng(bits * 31 + N);
        const zeros = Float64Array.from({ length: L * N }, () => 1 + rng.int(maxCode(bits) + 1));
        zeros[0] = maxCode(bits) + 1;
        const packed = packQzeros(zeros, L, N, bits);
        expect(packed.length).toBe(L * packedWords(N, bits));
        expect(unpackQzeros(packed, L, N, bits)).toEqual(zeros);
      });
    }
  }

  it('3 bits along the output dim uses the same stream as qweight', () => {
    const zeros = Float64Array.from({ length: 32 }, (_, j) => ((5 * j + 3) % 8) + 1);
    expect(Array.from(packQzeros(zeros, 1, 32, 3))).toEqual([1137079619, 1967375989, -965393466]);
  });

  it('refuses zeros with no v1 encoding: 0, fractional, above 2^b', () => {
    expect(() => packQzeros(Float64Array.from([0]), 1, 1, 4)).toThrow(/no GPTQ v1 encoding/);
    expect(() => packQzeros(Float64Array.from([2.5]), 1, 1, 4)).toThrow(/no GPTQ v1 encoding/);
    expect(() => packQzeros(Float64Array.from([17]), 1, 1, 4)).toThrow(/no GPTQ v1 encoding/);
  });

  it('gptq_v2 stores z itself: 0 … 2^b − 1, the same stream shifted by one', () => {
    const zeros = Float64Array.from({ length: 32 }, (_, j) => (5 * j + 3) % 8);
    expect(Array.from(packQzeros(zeros, 1, 32, 3, 'gptq_v2'))).toEqual(Array.from(packQzeros(zeros.map((z) => z + 1), 1, 32, 3)));
    expect(unpackQzeros(packQzeros(zeros, 1, 32, 3, 'gptq_v2'), 1, 32, 3, 'gptq_v2')).toEqual(zeros);
    expect(() => packQzeros(Float64Array.from([16]), 1, 1, 4, 'gptq_v2')).toThrow(/no GPTQ v2 encoding: it must be an integer in \[0, 15\]/);
  });
});

describe('g_idx', () => {
  it('is ⌊i/g⌋ without desc_act', () => {
    expect(Array.from(sequentialGroupIndex(8, 4))).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
  });
});
