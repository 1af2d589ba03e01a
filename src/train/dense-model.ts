// A model whose weights are used as they are: no quantization, no adapters. Merged models are
// evaluated this way, since their weights are exactly s·(q − z').
import type { Llama2cCheckpoint } from '../model/llama2c-checkpoint.ts';
import { QaLoraModel } from './qalora-model.ts';
import type { TrainingOps } from '../runtime/ops.ts';
import { PROJECTIONS, type BlockSpec, type ProjectionSpec } from './qalora-spec.ts';

const AS_STORED: ProjectionSpec = { bits: null, group: 1, adapter: null };

export function denseModel(checkpoint: Llama2cCheckpoint, ops?: TrainingOps): QaLoraModel {
  const block = Object.fromEntries(PROJECTIONS.map((p) => [p, AS_STORED])) as unknown as BlockSpec;
  return new QaLoraModel(checkpoint, checkpoint.layers.map(() => block), ops ? { ops } : {});
}
