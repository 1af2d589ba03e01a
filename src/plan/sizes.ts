// Bytes of every part of a layer and of the model, as stored by qalc: packed integer weights
// (GPTQ's layout: 32-bit words along the input dimension), scales and zeros per group and
// column, adapter parameters — against the same model in fp16.
import type { Architecture } from '../model/architecture.ts';
import type { AdapterPlan, FloatDtype, LayerPlan, LayerSizes, PlanTotals, QuantPlan } from './plan.ts';

const FLOAT_BYTES: Readonly<Record<FloatDtype, number>> = { fp16: 2, bf16: 2, fp32: 4 };

/** 32-bit words holding `count` values of `bits` bits, the last word zero-padded. */
export function packedWords(count: number, bits: number): number {
  return Math.ceil((count * bits) / 32);
}

export function layerSizes(inFeatures: number, outFeatures: number, quant: QuantPlan | null, adapter: AdapterPlan | null): LayerSizes {
  const fp16Bytes = inFeatures * outFeatures * 2;
  let weightBytes = fp16Bytes;
  let scaleBytes = 0;
  let zeroBytes = 0;
  if (quant) {
    weightBytes = packedWords(quant.paddedInFeatures, quant.bits) * 4 * outFeatures;
    scaleBytes = quant.groups * outFeatures * FLOAT_BYTES[quant.scaleDtype];
    zeroBytes = quant.zeroStorage === 'int'
      ? quant.groups * packedWords(outFeatures, quant.bits) * 4
      : quant.groups * outFeatures * FLOAT_BYTES[quant.zeroStorage];
  }
  const adapterParams = adapter ? adapter.inputWidth * adapter.rank + adapter.rank * outFeatures : 0;
  const adapterBytes = adapter ? adapterParams * FLOAT_BYTES[adapter.dtype] : 0;
  return { fp16Bytes, weightBytes, scaleBytes, zeroBytes, adapterParams, adapterBytes };
}

export function planTotals(arch: Architecture, layers: readonly LayerPlan[]): PlanTotals {
  const sum = (f: (s: LayerSizes) => number) => layers.reduce((total, l) => total + f(l.sizes), 0);
  const hasLmHead = layers.some((l) => l.projection === 'lm_head');
  const embedding = arch.vocab * arch.dim * 2;
  const norms = (2 * arch.layers + 1) * arch.dim * 2;
  // An lm_head outside the plan stays fp16; tied to the embedding it costs nothing extra.
  const lmHead = hasLmHead || arch.tiedEmbeddings ? 0 : arch.vocab * arch.dim * 2;
  const otherBytes = embedding + norms + lmHead;
  const linearFp16Bytes = sum((s) => s.fp16Bytes);
  const linearQuantizedBytes = sum((s) => s.weightBytes + s.scaleBytes + s.zeroBytes);
  // In the fp16 model a planned lm_head that is tied to the embedding shares its weights.
  const tiedLmHeadFp16 = hasLmHead && arch.tiedEmbeddings ? arch.vocab * arch.dim * 2 : 0;
  return {
    linearFp16Bytes,
    linearQuantizedBytes,
    adapterParams: sum((s) => s.adapterParams),
    adapterBytes: sum((s) => s.adapterBytes),
    otherBytes,
    modelFp16Bytes: linearFp16Bytes - tiedLmHeadFp16 + otherBytes,
    modelQuantizedBytes: linearQuantizedBytes + otherBytes,
  };
}
