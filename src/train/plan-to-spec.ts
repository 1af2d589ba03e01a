// The compiler's plan, as the CPU trainer's per-projection spec. What the trainer cannot do yet
// is refused here by name, never approximated.
import type { Plan } from '../plan/plan.ts';
import type { Bits } from '../quant/quantized-weight.ts';
import { PROJECTIONS, type BlockSpec, type ProjectionName, type ProjectionSpec, type QaLoraSpec } from './qalora-spec.ts';

export class UnsupportedPlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedPlanError';
  }
}

export function planToSpec(plan: Plan): QaLoraSpec {
  const unsupported = new Set<string>();
  const blocks: Record<ProjectionName, ProjectionSpec>[] = Array.from({ length: plan.model.architecture.layers }, () => ({}) as Record<ProjectionName, ProjectionSpec>);
  for (const layer of plan.layers) {
    if (layer.block === null) {
      unsupported.add(`${layer.name}: quantizing or adapting lm_head`);
      continue;
    }
    const q = layer.quant;
    const a = layer.adapter;
    if (a && a.kind !== 'qalora') unsupported.add(`${layer.name}: kind = ${a.kind}`);
    blocks[layer.block]![layer.projection as ProjectionName] = {
      bits: (q?.bits ?? null) as Bits | null,
      group: q?.group ?? layer.inFeatures,
      ...(q ? { symmetric: q.symmetric, scaleDtype: q.scaleDtype, pad: q.paddedInFeatures !== layer.inFeatures } : {}),
      adapter: a ? { rank: a.rank, alpha: a.alpha, dropout: a.dropout, pooling: a.pooling ?? 'mean' } : null,
    };
  }
  if (unsupported.size > 0) {
    const list = [...unsupported];
    throw new UnsupportedPlanError(`the cpu trainer does not support yet: ${list.slice(0, 5).join('; ')}${list.length > 5 ? ` and ${list.length - 5} more` : ''}`);
  }
  for (const block of blocks) for (const p of PROJECTIONS) if (!block[p]) throw new Error(`the plan has no record for projection ${p}`);
  return blocks as BlockSpec[];
}
