// A spec's model as it would run after `qalc merge`, built in memory: quantized as planned, the
// run's adapters (when there is a run) folded into the zero points, dequantized for inference —
// or, for a device backend's decode path, left as the quantized model with its adapters.
import { existsSync } from 'node:fs';
import { mergedDenseCheckpoint } from '../export/merged-model.ts';
import type { Llama2cCheckpoint } from '../model/llama2c-checkpoint.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import type { Plan } from '../plan/plan.ts';
import { changesNotice, loadAdapters, runRandomWeightsSeed } from './checkpoint.ts';
import { requireTrainSettings, setUpTraining } from './trainer.ts';
import type { TrainingOps } from '../runtime/ops.ts';
import type { QaLoraModel } from './qalora-model.ts';

export interface SpecModelOptions {
  /** Random weights for a spec without a checkpoint and no run that records their seed: drawn from the spec's train.seed, as `qalc train --random-weights` draws them. */
  readonly randomWeights?: boolean;
}

/** The spec's quantized model with the adapters of the run at `checkpoint` loaded (B = 0 without a run), computing with `ops`. */
export function specQaLoraModelWithRun(plan: Plan, specDir: string, checkpoint: string, ops?: TrainingOps, options: SpecModelOptions = {}): { model: QaLoraModel; weights: Llama2cCheckpoint; tokenizer: Tokenizer; description: string } {
  const seed = runRandomWeightsSeed(checkpoint) ?? (options.randomWeights ? Number(requireTrainSettings(plan).seed) : undefined);
  const { model, weights, tokenizer } = setUpTraining(plan, specDir, ops, undefined, seed);
  let description = `${plan.spec}: quantized, no run at ${checkpoint}: the adapters are at initialisation (B = 0)`;
  if (existsSync(checkpoint)) {
    const { step, changes } = loadAdapters(checkpoint, plan, model);
    description = `${plan.spec}: quantized, with the adapters of ${checkpoint} (step ${step})`;
    const changed = changesNotice(checkpoint, changes);
    if (changed) description += `\n${changed}`;
  }
  return { model, weights, tokenizer, description };
}

export function specModelWithRun(plan: Plan, specDir: string, checkpoint: string, ops?: TrainingOps, options: SpecModelOptions = {}): { weights: Llama2cCheckpoint; tokenizer: Tokenizer; description: string } {
  const { model, weights, tokenizer, description } = specQaLoraModelWithRun(plan, specDir, checkpoint, ops, options);
  return {
    weights: mergedDenseCheckpoint(model, weights),
    tokenizer,
    description: existsSync(checkpoint) ? `${description} merged` : description,
  };
}
