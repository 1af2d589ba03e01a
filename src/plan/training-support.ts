// What `qalc train` (and the merge after it) can do with a layer's resolved settings. A spec
// with a train block is refused here, at check time, for any setting the trainer would ignore or
// refuse later — never trained on as if it had taken effect. A spec without one only compiles,
// and the emitted kernels honour these settings, so it is not refused.
import type { AdapterPlan, QuantPlan } from './plan.ts';
import type { LinearLayer } from './layer-shapes.ts';
import type { ResolvedSettings, ResolvedValue } from './resolve-settings.ts';

export interface TrainingRefusal {
  readonly at: ResolvedValue | undefined;
  readonly key: string;
  readonly message: (layers: string) => string;
  readonly hint?: string;
}

/** `backend`: the train block's (`qalc train --backend` is checked again when the model is built). */
export function trainingRefusals(layer: LinearLayer, r: ResolvedSettings, quant: QuantPlan | null, adapter: AdapterPlan | null, backend: string): TrainingRefusal[] {
  const out: TrainingRefusal[] = [];
  const K = layer.inFeatures;
  if (layer.block === null && (quant || adapter)) {
    out.push({ at: quant ? r.get('quantize') : r.get('adapter'), key: 'train-lm-head', message: () => `qalc train keeps lm_head frozen in float (quantizing or adapting it is not implemented yet)`,
      hint: 'remove the override of lm_head to train; `qalc compile` emits its kernels either way' });
  }
  if (quant && quant.paddedInFeatures !== K && backend !== 'cpu') {
    out.push({ at: r.get('pad'), key: 'train-pad', message: (layers) => `pad = zero: qalc train pads in-features on the cpu backend only so far, not ${backend} (${layers}: ${K} padded to ${quant.paddedInFeatures})`,
      hint: `train with backend = cpu, or use a group that divides ${K} for them (an override)` });
  }
  if (quant && quant.zeroStorage !== 'int' && quant.zeroStorage !== 'fp32') {
    out.push({ at: r.get('zero'), key: 'train-zero', message: () => `zero = ${quant.zeroStorage}: qalc train and merge keep zeros as integers (RTN's) or, merged, as fp32; ${quant.zeroStorage} zeros are not implemented`,
      hint: 'zero = int (GPTQ\'s packed zeros) or zero = fp32 (the merged model\'s fractional zeros)' });
  }
  if (adapter?.kind === 'lora') {
    out.push({ at: r.get('kind'), key: 'train-lora', message: () => 'kind = lora: qalc train trains QA-LoRA adapters only', hint: 'kind = qalora, or remove the train block to compile plain-LoRA kernels' });
  }
  if (adapter && adapter.init !== 'kaiming_uniform') {
    out.push({ at: r.get('init'), key: 'train-init', message: () => `init = ${adapter.init}: qalc train initialises A with PEFT's kaiming_uniform only`, hint: 'init = kaiming_uniform (the default)' });
  }
  if (adapter && adapter.dtype !== 'fp32') {
    out.push({ at: r.get('dtype'), key: 'train-adapter-dtype', message: () => `dtype = ${adapter.dtype}: qalc train keeps the adapters and their optimizer state in fp32`, hint: 'dtype = fp32 (the default)' });
  }
  return out;
}
