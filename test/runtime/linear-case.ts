// One QA-LoRA linear layer test case, shared by the backends' op tests (cpu, webgpu): the layer
// (quantized or dense base, with or without an adapter), its saved activations and its inputs,
// all from a fixed seed, so every backend and the TypeScript op see the same numbers.
import type { Pooling } from '../../src/reference/adapter.ts';
import { createRng, type Rng } from '../../src/reference/random.ts';
import type { Bits } from '../../src/quant/quantized-weight.ts';
import { quantizeRtn } from '../../src/quant/rtn.ts';
import { withStoredScales } from '../../src/quant/scale-dtype.ts';
import { dropoutDraws } from '../../src/runtime/typescript/dropout-draws.ts';
import type { Floats } from '../../src/runtime/typescript/floats.ts';
import type { AdapterActivations, FrozenWeight, QaLoraLinear } from '../../src/runtime/typescript/qalora-linear.ts';

export interface LinearCase {
  readonly name: string;
  readonly rows: number;
  readonly K: number;
  readonly N: number;
  readonly group: number;
  readonly bits: Bits | null; // null: dense base
  readonly rank: number; // 0: no adapter
  readonly pooling?: Pooling;
  readonly dropout?: number;
  readonly fractionalZeros?: boolean;
  /** GPTQ's sym=True (zeros 2^(b−1)) with fp16 scales, as a spec with symmetric = true trains. */
  readonly symmetricFp16?: boolean;
}

export interface LinearCaseData {
  readonly layer: QaLoraLinear;
  readonly saved: AdapterActivations | undefined;
  readonly x: Float32Array;
  readonly dy: Float32Array;
  /** Written by the forward. */
  readonly y: Float32Array;
  /** Accumulated into by the backward (starts non-zero). */
  readonly dx: Float32Array;
  /** Everything the forward and backward wrote, by name. */
  outputs(): Record<string, Floats>;
}

export function randomFloats(rng: Rng, length: number, scale = 1): Float32Array {
  return Float32Array.from({ length }, () => scale * rng.normal());
}

export function linearCaseData(c: LinearCase): LinearCaseData {
  const rng = createRng(c.K * 7 + c.N);
  const weight = Float64Array.from({ length: c.K * c.N }, () => 0.2 * rng.normal());
  let base: FrozenWeight;
  if (c.bits === null) {
    base = { kind: 'dense', inFeatures: c.K, outFeatures: c.N, weight: Float32Array.from(weight) };
  } else {
    const rtn = quantizeRtn(weight, c.K, c.N, { bits: c.bits, groupSize: c.group, symmetric: c.symmetricFp16 ?? false });
    const quantized = c.symmetricFp16 ? withStoredScales(rtn, 'fp16', c.name) : rtn;
    if (c.fractionalZeros) for (let i = 0; i < quantized.zeros.length; i++) quantized.zeros[i] += rng.uniform(-0.5, 0.5);
    base = { kind: 'quantized', weight: quantized };
  }
  const groups = c.K / c.group;
  const layer: QaLoraLinear = {
    base,
    adapter: c.rank === 0 ? null : {
      groupSize: c.group, rank: c.rank, pooling: c.pooling ?? 'mean', scaling: 2 / c.rank, dropout: c.dropout ?? 0,
      a: randomFloats(rng, groups * c.rank, 0.5), b: randomFloats(rng, c.rank * c.N, 0.5),
      gradA: randomFloats(rng, groups * c.rank, 0.1), gradB: randomFloats(rng, c.rank * c.N, 0.1),
    },
  };
  const saved: AdapterActivations | undefined = c.rank === 0 ? undefined : {
    u: new Float32Array(c.rows * groups), v: new Float32Array(c.rows * c.rank),
    mask: c.dropout ? dropoutDraws(c.K * 7 + c.N, 12_345) : undefined,
  };
  const x = randomFloats(rng, c.rows * c.K), dy = randomFloats(rng, c.rows * c.N);
  const y = new Float32Array(c.rows * c.N), dx = randomFloats(rng, c.rows * c.K);
  return {
    layer, saved, x, dy, y, dx,
    outputs: () => ({
      y, dx,
      ...(saved && layer.adapter ? { u: saved.u, v: saved.v, dA: layer.adapter.gradA, dB: layer.adapter.gradB } : {}),
    }),
  };
}
