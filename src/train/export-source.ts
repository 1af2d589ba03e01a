// What every export is written from, built from a spec's model with its run's adapters loaded:
// the merged model (with its tokenizer and plan, so it stands alone) and the adapters in qalc's
// form, checked against the adapters on a held-out batch. Shared by `qalc merge` (which writes
// the spec's export formats) and `qalc export`.
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { ExportSource } from '../export/formats.ts';
import { denseCheckpointOf, mergeModel, type MergedModel } from '../export/merged-model.ts';
import type { Llama2cCheckpoint } from '../model/llama2c-checkpoint.ts';
import { modelTokenizerPath } from '../model/read-tokenizer.ts';
import type { AdapterSet, ExportedAdapter } from '../export/peft-adapter.ts';
import { HF_PROJECTION_NAMES } from '../plan/layer-shapes.ts';
import type { Plan } from '../plan/plan.ts';
import type { TrainingOps } from '../runtime/ops.ts';
import { changesNotice, loadAdapters, runRandomWeightsSeed } from './checkpoint.ts';
import { denseModel } from './dense-model.ts';
import { heldOutLoss } from './held-out-loss.ts';
import type { QaLoraModel, TrainableCheckpoint } from './qalora-model.ts';
import { PROJECTIONS } from './qalora-spec.ts';
import { setUpTraining, TrainingError } from './trainer.ts';

/** Float32 activations through a different order of operations: well within this. */
export const MERGE_TOLERANCE = 1e-4;

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

export interface MergedRun {
  /** The step of the run's checkpoint; 0 with no run (adapters at initialisation). */
  readonly step: number;
  readonly source: ExportSource;
  /** The held-out batch run through the adapters and through the merged model (as `checked` gives it). */
  readonly check: { readonly lossBefore: number; readonly lossAfter: number; readonly relativeDifference: number };
}

export interface MergedRunOptions {
  readonly ops?: TrainingOps;
  /** Settings changed since the checkpoint was written: one line each. */
  readonly notices?: string[];
  /** Loading's own lines (GPTQ's per layer). */
  readonly report?: (line: string) => void;
  /** The merged model as the check runs it: in memory by default; `qalc merge` writes and reads back its file. */
  readonly checked?: (merged: MergedModel) => Llama2cCheckpoint;
  /** What happens to a merge that fails the check, for its error ("not exported"). */
  readonly refusal?: string;
  /** The held-out loss of exports over the first this many held-out batches (all by default). */
  readonly heldOutBatches?: number;
}

/**
 * A spec's model with its run's adapters (or, with no checkpoint, the adapters at
 * initialisation), merged in memory and checked on a held-out batch against the adapters: what
 * `qalc merge` and `qalc export` write from. A random-weights run gets its weights back from
 * the seed its checkpoint records.
 */
export async function mergedRun(plan: Plan, specDir: string, checkpoint: string | undefined, options: MergedRunOptions = {}): Promise<MergedRun> {
  const { ops } = options;
  const { model, weights, dataset, settings } = setUpTraining(plan, specDir, ops, options.report, checkpoint ? runRandomWeightsSeed(checkpoint) : undefined);
  let step = 0;
  let description = `spec ${plan.spec}, quantized, adapters at initialisation (no run)`;
  if (checkpoint) {
    const loaded = loadAdapters(checkpoint, plan, model);
    step = loaded.step;
    description = `spec ${plan.spec}, run ${dirname(checkpoint)} (step ${step})`;
    const changed = changesNotice(checkpoint, loaded.changes);
    if (changed) options.notices?.push(changed);
  }
  const merged = mergedOf(plan, specDir, model, weights);
  const [batch] = dataset.evalBatches(Number(settings.batch), Number(settings.seq_len), 1);
  // The losses only (a device backend keeps the logits where they are, or never computes them whole).
  const lossBefore = await model.forward(batch!, { logitsOnDevice: true });
  const lossAfter = await denseModel((options.checked ?? denseCheckpointOf)(merged), ops).forward(batch!, { logitsOnDevice: true });
  const relativeDifference = Math.abs(lossAfter - lossBefore) / Math.abs(lossBefore);
  if (!(relativeDifference <= MERGE_TOLERANCE)) {
    throw new TrainingError(`the merged model's loss ${lossAfter} differs from the adapters' ${lossBefore} by ${relativeDifference.toExponential(2)} (more than ${MERGE_TOLERANCE}): ${options.refusal ?? 'not exported'}; please report this`);
  }
  const heldOutBatches = dataset.evalBatches(Number(settings.batch), Number(settings.seq_len), options.heldOutBatches);
  const source: ExportSource = {
    description, merged, adapters: adaptersOf(plan, model), base: mergeModel(model, weights, plan.spec, { foldAdapters: false }),
    checkpointFiles: checkpointFilesOf(plan, specDir),
    heldOut: (dense) => heldOutLoss(denseModel(dense, ops), heldOutBatches),
  };
  return { step, source, check: { lossBefore, lossAfter, relativeDifference } };
}
