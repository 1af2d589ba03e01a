// Rules on a layer's resolved settings: the checks that need both the spec and the model's
// shapes. Each problem names the setting that caused it; the same problem on many layers is
// reported once, listing the layers ("down of layers 0..4").
import type { SourceSpan } from '../diagnostics/diagnostic.ts';
import { oneOf } from '../diagnostics/suggest.ts';
import type { CheckedSpec } from '../check/checked-spec.ts';
import { ADAPTER_SCHEMA, QUANT_SCHEMA } from '../check/schema.ts';
import type { AdapterPlan, QuantPlan } from './plan.ts';
import { HF_PROJECTION_NAMES, type LinearLayer } from './layer-shapes.ts';
import type { ResolvedSettings, ResolvedValue } from './resolve-settings.ts';
import { trainingRefusals } from './training-support.ts';

export interface LayerProblem {
  readonly severity: 'error' | 'warning';
  readonly span: SourceSpan;
  /** Problems with the same key and span are reported once for all their layers. */
  readonly key: string;
  readonly message: (layers: string) => string;
  readonly hint?: string;
  readonly layer: LinearLayer;
}

export interface LayerDecision {
  readonly quant: QuantPlan | null;
  readonly adapter: AdapterPlan | null;
  readonly problems: LayerProblem[];
}

const GPTQ_ONLY = ['damp', 'calibration', 'samples', 'act_order'] as const;
const QUANT_KEYS = Object.keys(QUANT_SCHEMA);
const ADAPTER_KEYS = Object.keys(ADAPTER_SCHEMA).filter((k) => k !== 'projections');

/** Group sizes that would work for `k` in-features, small ones first, for hints. */
function workingGroups(k: number): number[] {
  const divisors: number[] = [];
  for (let g = 2; g <= Math.min(k, 256); g++) if (k % g === 0) divisors.push(g);
  return divisors.length > 6 ? divisors.slice(-6) : divisors;
}

export function decideLayer(spec: CheckedSpec, layer: LinearLayer, r: ResolvedSettings): LayerDecision {
  const problems: LayerProblem[] = [];
  const fallback = spec.quantSpan;
  const spanOf = (v: ResolvedValue | undefined) => v?.span ?? fallback;
  const problem = (severity: LayerProblem['severity'], at: ResolvedValue | undefined, key: string, message: (layers: string) => string, hint?: string) =>
    problems.push({ severity, span: spanOf(at), key, message, ...(hint ? { hint } : {}), layer });
  const get = <T>(key: string) => r.get(key)?.value as T;
  const setByOverride = (key: string) => r.get(key)?.override !== undefined;

  const K = layer.inFeatures;
  const N = layer.outFeatures;
  let quant: QuantPlan | null = null;
  const quantize = get<boolean>('quantize');
  // A GPTQ checkpoint fixes bits and group of the layers it quantized; the others it stores as
  // floats, and the spec quantizes them as it says.
  const fileQuantization = spec.model.checkpoint?.gptq;
  const gptqCheckpoint = fileQuantization && layer.block !== null && (!fileQuantization.modules || fileQuantization.modules.includes(HF_PROJECTION_NAMES[layer.projection]!))
    ? fileQuantization : undefined;

  if (quantize) {
    const bits = get<QuantPlan['bits']>('bits');
    const group = get<number>('group');
    const pad = get<'none' | 'zero'>('pad');
    const method = get<'rtn' | 'gptq'>('method');
    let paddedInFeatures = K;
    if (K % group !== 0) {
      if (pad === 'none') {
        const working = workingGroups(K);
        const nearest = [...working].sort((a, b) => Math.abs(a - group) - Math.abs(b - group) || b - a)[0] ?? 1;
        // Only down (and lm_head) read something other than dim: an override fixes just them.
        const fix = K === spec.model.architecture.dim
          ? `group = ${nearest}`
          : `\`override proj ${layer.projection} { group = ${nearest} }\``;
        problem('error', r.get('group'), `group-divides-${K}`, (layers) => `group = ${group} does not divide the in-features (${K}) of ${layers}`,
          `${working.length > 0 ? `use a group that divides ${K} (${oneOf(working)}), e.g. ${fix}, or ` : ''}` +
          `set \`pad = zero\` to pad the in-features to ${Math.ceil(K / group) * group}`);
      } else {
        paddedInFeatures = Math.ceil(K / group) * group;
      }
    }
    if (method === 'rtn') {
      for (const key of GPTQ_ONLY) {
        const v = r.get(key);
        if (v?.span) problem('error', v, `gptq-only-${key}`, () => `${key} applies to method = gptq, but these layers use rtn`, 'set method = gptq, or remove it');
      }
    }
    if (gptqCheckpoint) {
      if (bits !== gptqCheckpoint.bits) problem('error', r.get('bits'), 'gptq-bits', (layers) => `the GPTQ checkpoint is ${gptqCheckpoint.bits}-bit, but bits = ${bits} for ${layers}`, 'a GPTQ checkpoint is already quantized: its bits and group are fixed');
      const fileGroup = gptqCheckpoint.groupSize === -1 ? K : gptqCheckpoint.groupSize;
      if (group !== fileGroup) problem('error', r.get('group'), `gptq-group-${fileGroup}`, (layers) => `the GPTQ checkpoint has group size ${fileGroup}${gptqCheckpoint.groupSize === -1 ? ' (group_size -1: all in-features)' : ''}, but group = ${group} for ${layers}`);
      if (method === 'gptq') problem('error', r.get('method'), 'gptq-requantize', (layers) => `method = gptq would quantize ${layers} again, but the GPTQ checkpoint has already quantized them`, 'remove method = gptq: the checkpoint\'s codes, scales and zeros are the frozen base');
    }
    // With QA-LoRA the adapter rule below says why; without it, the quantizer cannot do it either.
    if (method === 'gptq' && get<boolean>('act_order') && get<string>('adapter') !== 'on') {
      problem('error', r.get('act_order'), 'act-order-unsupported', (layers) => `act_order = true for ${layers}: qalc's GPTQ quantizes the inputs in order (act-order is not implemented)`, 'set act_order = false');
    }
    quant = {
      bits, group, groups: paddedInFeatures / group, paddedInFeatures, pad,
      symmetric: get<boolean>('symmetric'),
      scaleDtype: get<QuantPlan['scaleDtype']>('scale'),
      zeroStorage: get<QuantPlan['zeroStorage']>('zero'),
      method,
      ...(method === 'gptq' ? {
        gptq: {
          damp: get<number>('damp'), samples: get<number>('samples'), actOrder: get<boolean>('act_order'),
          ...(r.get('calibration') ? { calibration: get<string>('calibration') } : {}),
        },
      } : {}),
    };
    if (layer.projection === 'lm_head' && spec.model.architecture.tiedEmbeddings) {
      problem('warning', r.get('quantize'), 'untie', () => 'lm_head shares its weights with the token embedding: quantizing it unties them (the embedding stays fp16)');
    }
  } else {
    for (const key of QUANT_KEYS) {
      if (setByOverride(key)) problem('warning', r.get(key), `unused-${key}`, (layers) => `${key} has no effect on ${layers}: not quantized`, 'add `quantize = true` to quantize them');
    }
  }

  let adapter: AdapterPlan | null = null;
  if (get<string>('adapter') === 'on') {
    const kind = get<'qalora' | 'lora'>('kind');
    const rankValue = r.get('rank');
    if (kind === 'qalora' && !quant) {
      problem('error', r.get('kind')?.span ? r.get('kind') : r.get('adapter'), 'qalora-needs-quant', (layers) => `QA-LoRA pools its input by quantization group, but ${layers} ${layers.includes(' of layers') || layers.includes(',') ? 'are' : 'is'} not quantized`,
        'set `quantize = true` for them, or `kind = lora`');
    } else if (quant && quant.paddedInFeatures % quant.group !== 0) {
      // The group does not fit this layer (reported above): its rank cannot be judged.
    } else if (!rankValue) {
      problem('error', r.get('adapter'), 'needs-rank', (layers) => `the adapter of ${layers} has no rank`, 'set rank in the adapter block or the override');
    } else {
      const rank = rankValue.value as number;
      const inputWidth = kind === 'qalora' ? quant!.groups : K;
      const maxRank = Math.min(inputWidth, N);
      if (rank > maxRank) {
        const why = kind === 'qalora' ? `min(in-features / group, out-features) = min(${quant!.paddedInFeatures}/${quant!.group}, ${N})` : `min(in-features, out-features) = min(${K}, ${N})`;
        problem('error', rankValue, 'rank-range', (layers) => `rank = ${rank} is larger than ${maxRank} = ${why} for ${layers}`,
          kind === 'qalora' ? `QA-LoRA's A has one row per group: use rank ≤ ${maxRank}, or a smaller group` : `use rank ≤ ${maxRank}`);
      }
      if (kind === 'lora' && r.get('pooling')?.span) {
        problem('error', r.get('pooling'), 'pooling-lora', () => 'pooling applies to kind = qalora; plain LoRA does not pool', 'remove pooling, or set kind = qalora');
      }
      const actOrder = quant?.gptq?.actOrder || gptqCheckpoint?.actOrder;
      if (kind === 'lora' && quant?.gptq?.actOrder) {
        problem('error', r.get('act_order'), 'act-order-unsupported', (layers) => `act_order = true for ${layers}: qalc's GPTQ quantizes the inputs in order (act-order is not implemented)`, 'set act_order = false');
      }
      if (kind === 'qalora' && actOrder) {
        const at = quant?.gptq?.actOrder ? r.get('act_order') : undefined;
        problem('error', at ?? r.get('kind') ?? r.get('adapter'), 'act-order', (layers) => `act_order permutes the groups of ${layers}, so QA-LoRA's pooling of consecutive inputs no longer matches them`,
          gptqCheckpoint?.actOrder ? 'this GPTQ checkpoint was made with desc_act: use one made without it, or kind = lora' : 'set act_order = false, or kind = lora');
      }
      const alpha = get<number>('alpha');
      adapter = {
        kind, rank, alpha, scale: alpha / rank, dropout: get<number>('dropout'),
        ...(kind === 'qalora' ? { pooling: get<'mean' | 'sum'>('pooling') } : {}),
        init: get<AdapterPlan['init']>('init'),
        dtype: get<AdapterPlan['dtype']>('dtype'),
        inputWidth,
      };
    }
  } else {
    for (const key of ADAPTER_KEYS) {
      if (setByOverride(key)) problem('warning', r.get(key), `unused-${key}`, (layers) => `${key} has no effect on ${layers}: they have no adapter`, 'add `adapter = on` to give them one');
    }
  }
  if (spec.train) {
    for (const refusal of trainingRefusals(layer, r, quant, adapter, String(spec.train.get('backend')?.value ?? 'cpu'))) problem('error', refusal.at, refusal.key, refusal.message, refusal.hint);
  }
  return { quant, adapter, problems };
}
