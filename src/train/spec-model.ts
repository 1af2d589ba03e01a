// A spec's model as it would run after `qalc merge`, built in memory: quantized as planned, the
// run's adapters (when there is a run) folded into the zero points, dequantized for inference.
import { existsSync } from 'node:fs';
import { mergedDenseCheckpoint } from '../export/merged-model.ts';
import type { Llama2cCheckpoint } from '../model/llama2c-checkpoint.ts';
import type { Tokenizer } from '../model/tokenizer.ts';
import type { Plan } from '../plan/plan.ts';
import { changesNotice, loadAdapters, runRandomWeightsSeed } from './checkpoint.ts';
import { setUpTraining } from './trainer.ts';
import type { TrainingOps } from '../runtime/ops.ts';

export function specModelWithRun(plan: Plan, specDir: string, checkpoint: string, ops?: TrainingOps): { weights: Llama2cCheckpoint; tokenizer: Tokenizer; description: string } {
  const { model, weights, tokenizer } = setUpTraining(plan, specDir, ops, undefined, runRandomWeightsSeed(checkpoint));
  let description = `${plan.spec}: quantized, no run at ${checkpoint}: the adapters are at initialisation (B = 0)`;
  if (existsSync(checkpoint)) {
    const { step, changes } = loadAdapters(checkpoint, plan, model);
    description = `${plan.spec}: quantized, with the adapters of ${checkpoint} (step ${step}) merged`;
    const changed = changesNotice(checkpoint, changes);
    if (changed) description += `\n${changed}`;
  }
  return {
    weights: mergedDenseCheckpoint(model, weights),
    tokenizer,
    description,
  };
}
