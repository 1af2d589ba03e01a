// A merged model (`qalc merge`'s file, or a run merged in memory) as a QaLoraModel with no
// adapters: each quantized projection's frozen base is the merged weight itself — the same codes
// and scales, the adapter folded into float zeros — so the ops that run a spec's model (the cuda
// backend's device decode path, device-decode.ts) run the merged model with the kernels of a plan
// without adapters (src/plan/merged-plan.ts). Nothing is quantized again and no adapter term is
// computed: per linear, x·Ŵ alone.
import type { MergedModel } from '../export/merged-model.ts';
import type { LayerWeights, Tensor } from '../model/llama2c-checkpoint.ts';
import type { QuantizedWeight } from '../quant/quantized-weight.ts';
import type { TrainingOps } from '../runtime/ops.ts';
import { QaLoraModel, type TrainableCheckpoint } from './qalora-model.ts';
import { PROJECTIONS, type BlockSpec, type ProjectionName, type ProjectionSpec } from './qalora-spec.ts';

export interface MergedQaLoraModel {
  readonly model: QaLoraModel;
  readonly weights: TrainableCheckpoint;
}

export function mergedQaLoraModel(merged: MergedModel, ops?: TrainingOps): MergedQaLoraModel {
  const quantized = new Map<string, QuantizedWeight>();
  const spec: BlockSpec[] = [];
  const layers = merged.blocks.map((block, l): LayerWeights => {
    const blockSpec = {} as Record<ProjectionName, ProjectionSpec>;
    const tensors = {} as Record<ProjectionName, Tensor>;
    for (const p of PROJECTIONS) {
      const projection = block.projections[p];
      const name = `layers.${l}.${p}`;
      if (projection.kind === 'dense') {
        tensors[p] = projection.weight;
        blockSpec[p] = { bits: null, group: projection.weight.shape[1]!, adapter: null };
        continue;
      }
      const { weight, inFeatures } = projection;
      quantized.set(name, weight);
      // The shape only: the model reads a prequantized projection from `quantized`.
      tensors[p] = { name, shape: [weight.outFeatures, inFeatures], data: new Float32Array(0) };
      blockSpec[p] = { bits: weight.bits, group: weight.groupSize, pad: weight.inFeatures !== inFeatures, adapter: null };
    }
    spec.push(blockSpec);
    const { q, k, v, o, gate, up, down } = tensors;
    return { rmsAtt: block.rmsAtt, rmsFfn: block.rmsFfn, wq: q, wk: k, wv: v, wo: o, w1: gate, w2: down, w3: up, q, k, v, o, gate, up, down };
  });
  const weights: TrainableCheckpoint = { arch: merged.arch, tokenEmbedding: merged.tokenEmbedding, layers, rmsFinal: merged.rmsFinal, classifier: merged.classifier, quantized };
  return { model: new QaLoraModel(weights, spec, ops ? { ops } : {}), weights };
}
