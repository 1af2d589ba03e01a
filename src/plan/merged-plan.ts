// The plan of a merged model (`qalc merge`): the plan it was merged under, with every adapter
// folded into its layer's zero points. No layer has an adapter any more, so its kernels are the
// base's alone (forward and decode with no adapter term), and its zeros are stored as floats
// (fractional after the merge: merged-model.ts stores them float32). The spec's name gets
// `_merged` so that its compiled kernels (generated/<spec>_merged/) never mix with the spec's own.
import { kernelsFor } from './build-plan.ts';
import type { LayerPlan, Plan } from './plan.ts';
import { layerSizes, planTotals } from './sizes.ts';

export const MERGED_SPEC_SUFFIX = '_merged';

export function mergedPlan(plan: Plan): Plan {
  const layers = plan.layers.map((layer): LayerPlan => {
    const quant = layer.quant === null ? null : { ...layer.quant, zeroStorage: 'fp32' as const };
    const merged = { quant, adapter: null };
    return { ...layer, ...merged, kernels: kernelsFor(merged), sizes: layerSizes(layer.inFeatures, layer.outFeatures, quant, null) };
  });
  const spec = plan.spec.endsWith(MERGED_SPEC_SUFFIX) ? plan.spec : `${plan.spec}${MERGED_SPEC_SUFFIX}`;
  return { ...plan, spec, layers, totals: planTotals(plan.model.architecture, layers) };
}
