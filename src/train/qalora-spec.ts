// What to do with each of the 7 projections of each block: how to quantize the frozen base
// weight and which QA-LoRA adapter, if any, to train on it. A plain typed value; the compiler's
// plan (src/plan) maps onto it.
import type { Architecture } from '../model/architecture.ts';
import type { Bits } from '../quant/quantized-weight.ts';
import type { ScaleDtype } from '../quant/scale-dtype.ts';
import type { Pooling } from '../reference/adapter.ts';

export const PROJECTIONS = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;
export type ProjectionName = (typeof PROJECTIONS)[number];

export interface AdapterSpec {
  readonly rank: number;
  /** σ = alpha / rank scales the adapter's output. */
  readonly alpha: number;
  /** Dropout probability on the pooled input, 0 ≤ p < 1; applied in training forwards only. */
  readonly dropout: number;
  readonly pooling: Pooling;
}

export interface ProjectionSpec {
  /** RTN bits of the frozen base; null keeps the float32 weight unquantized (a control). */
  readonly bits: Bits | null;
  /** Group size g: shared by the quantization and the adapter's pooling; must divide in-features unless `pad`. */
  readonly group: number;
  /** pad = zero: in-features padded with zero rows (inputs) to a multiple of g. Default false. */
  readonly pad?: boolean;
  /** GPTQ's sym=True: the zero fixed at 2^(b−1) (rtn.ts). Default false, QALORA.md's asymmetric. */
  readonly symmetric?: boolean;
  /** The dtype the scales are stored, and so computed, in (scale-dtype.ts). Default: exact (float64). */
  readonly scaleDtype?: ScaleDtype;
  readonly adapter: AdapterSpec | null;
}

export type BlockSpec = Readonly<Record<ProjectionName, ProjectionSpec>>;

/** One BlockSpec per transformer block, in order. */
export type QaLoraSpec = readonly BlockSpec[];

/** (out, in) features of a projection, as llama2.c stores it [out, in]. */
export function projectionShape(arch: Architecture, name: ProjectionName): { outFeatures: number; inFeatures: number } {
  const kvDim = (arch.dim / arch.heads) * arch.kvHeads;
  switch (name) {
    case 'q': case 'o': return { outFeatures: arch.dim, inFeatures: arch.dim };
    case 'k': case 'v': return { outFeatures: kvDim, inFeatures: arch.dim };
    case 'gate': case 'up': return { outFeatures: arch.hiddenDim, inFeatures: arch.dim };
    case 'down': return { outFeatures: arch.dim, inFeatures: arch.hiddenDim };
  }
}

/** The same choice function applied to every projection of every block. */
export function specForEveryProjection(
  arch: Architecture,
  choose: (projection: ProjectionName, inFeatures: number, layer: number) => ProjectionSpec,
): QaLoraSpec {
  return Array.from({ length: arch.layers }, (_, layer) => {
    const block = {} as Record<ProjectionName, ProjectionSpec>;
    for (const name of PROJECTIONS) block[name] = choose(name, projectionShape(arch, name).inFeatures, layer);
    return block;
  });
}
