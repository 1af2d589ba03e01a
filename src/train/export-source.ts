// What every export is written from, built from a spec's model with its run's adapters loaded:
// the merged model (with its tokenizer and plan, so it stands alone) and the adapters in qalc's
// form. Shared by `qalc merge` (which writes the spec's export formats) and `qalc export`.
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { modelTokenizerPath } from '../model/read-tokenizer.ts';
import { mergeModel, type MergedModel } from '../export/merged-model.ts';
import type { AdapterSet, ExportedAdapter } from '../export/peft-adapter.ts';
import { HF_PROJECTION_NAMES } from '../plan/layer-shapes.ts';
import type { Plan } from '../plan/plan.ts';
import type { QaLoraModel, TrainableCheckpoint } from './qalora-model.ts';
import { PROJECTIONS } from './qalora-spec.ts';

/** The merged model with what it needs to stand alone: the tokenizer's bytes and the plan. */
export function mergedOf(plan: Plan, specDir: string, model: QaLoraModel, weights: TrainableCheckpoint): MergedModel {
  // The spec's tokenizer, or the one its Hugging Face or GPTQ checkpoint directory carries.
  const tokenizerPath = modelTokenizerPath(plan.model.tokenizer, plan.model.checkpoint, specDir);
  return mergeModel(model, weights, plan.spec, {
    ...(tokenizerPath ? { tokenizer: { name: basename(tokenizerPath), bytes: new Uint8Array(readFileSync(tokenizerPath)) } } : {}),
    plan: JSON.stringify(plan),
  });
}

/** Files of a Hugging Face checkpoint folder that travel with its weights. */
const CHECKPOINT_COMPANIONS = ['tokenizer.json', 'tokenizer.model', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json'];

/** The companion files of the spec's checkpoint folder (none for a llama2.c file): name → bytes. */
export function checkpointFilesOf(plan: Plan, specDir: string): ReadonlyMap<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const checkpoint = plan.model.checkpoint;
  if (!checkpoint || checkpoint.format === 'llama2c') return files;
  const dir = resolve(specDir, checkpoint.path);
  for (const name of CHECKPOINT_COMPANIONS) if (existsSync(join(dir, name))) files.set(name, new Uint8Array(readFileSync(join(dir, name))));
  return files;
}

/** Every trained adapter of the model, in qalc's form. */
export function adaptersOf(plan: Plan, model: QaLoraModel): AdapterSet {
  const adapters: ExportedAdapter[] = [];
  model.blocks.forEach((block, l) => {
    for (const p of PROJECTIONS) {
      const { base, adapter } = block[p].layer;
      if (!adapter) continue;
      const [inFeatures, outFeatures] = base.kind === 'dense' ? [base.inFeatures, base.outFeatures] : [base.weight.inFeatures, base.weight.outFeatures];
      const module = `model.layers.${l}.${HF_PROJECTION_NAMES[p]}`;
      adapters.push({
        module, projection: p, inFeatures, outFeatures,
        groupSize: adapter.groupSize, rank: adapter.rank, scaling: adapter.scaling, pooling: adapter.pooling,
        a: Float64Array.from(adapter.a), b: Float64Array.from(adapter.b),
      });
    }
  });
  return { spec: plan.spec, arch: model.arch, adapters };
}
