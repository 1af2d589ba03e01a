// How the quantized linear kernels want a frozen weight on the device: codes four to a u32
// along the dimension an invocation walks four of at once (a code per byte, bits ≤ 8), and the
// group scales and zeros padded to match, so a kernel reads four codes with one load and never
// needs a bounds check inside its loop. Built once per weight (OpRunner.frozen caches them).
import type { FrozenLayout } from './op-runner.ts';

const words = (count: number) => Math.ceil(count / 4);

/** Codes [K, N] as [K, ⌈N/4⌉] words: byte j of word (i, w) is q[i, 4w + j] (0 past N). For y. */
export function codesAlongOutputs(inFeatures: number, outFeatures: number): FrozenLayout {
  return {
    name: 'codes along outputs',
    build(q) {
      const width = words(outFeatures) * 4;
      const bytes = new Uint8Array(inFeatures * width);
      for (let i = 0; i < inFeatures; i++) bytes.set(q.subarray(i * outFeatures, (i + 1) * outFeatures), i * width);
      return new Uint32Array(bytes.buffer);
    },
  };
}

/** Codes [K, N] as [N, ⌈K/4⌉] words: byte j of word (o, w) is q[4w + j, o] (0 past K). For dx. */
export function codesAlongInputs(inFeatures: number, outFeatures: number): FrozenLayout {
  return {
    name: 'codes along inputs',
    build(q) {
      const width = words(inFeatures) * 4;
      const bytes = new Uint8Array(outFeatures * width);
      for (let i = 0; i < inFeatures; i++) for (let o = 0; o < outFeatures; o++) bytes[o * width + i] = q[i * outFeatures + o]!;
      return new Uint32Array(bytes.buffer);
    },
  };
}

/** Scales or zeros [L, N] as f32 [L, 4·⌈N/4⌉] (0 past N), to go with codesAlongOutputs. */
export function paddedToWords(groups: number, outFeatures: number): FrozenLayout {
  return {
    name: 'padded to words',
    build(values) {
      const width = words(outFeatures) * 4;
      const padded = new Float32Array(groups * width);
      for (let k = 0; k < groups; k++) for (let o = 0; o < outFeatures; o++) padded[k * width + o] = values[k * outFeatures + o]!;
      return padded;
    },
  };
}
