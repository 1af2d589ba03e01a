// `qalc eval`: the held-out loss of a spec's model — quantized, with a run's adapters or none —
// or of a merged model, on the same batches, so the two can be compared number for number: by
// default the whole held-out split, as `qalc train` measures it.
import { sameArchitecture } from '../model/architecture.ts';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { readMergedModelAsDense } from '../export/merged-model.ts';
import { mergedModelPath } from './export-run.ts';
import type { Plan } from '../plan/plan.ts';
import { changesNotice, loadAdapters, runRandomWeightsSeed } from './checkpoint.ts';
import { denseModel } from './dense-model.ts';
import { heldOutLoss } from './held-out-loss.ts';
import type { TrainingOps } from '../runtime/ops.ts';
import { runLockHolder } from './run-lock.ts';
import { setUpTraining, TrainingError } from './trainer.ts';

export interface EvaluateOptions {
  readonly plan: Plan;
  readonly specDir: string;
  /** The first this many held-out batches; all of them by default. */
  readonly batches?: number;
  /** A run's checkpoint: its adapters are used when it exists. */
  readonly checkpoint?: string;
  /** Or a merged model to evaluate instead of the spec's quantized one. */
  readonly mergedModel?: string;
  readonly ops?: TrainingOps;
}

export interface EvaluateResult {
  readonly what: string;
  readonly loss: number;
  /** Held-out target tokens the loss averages over. */
  readonly tokens: number;
  readonly batches: number;
  readonly batchSize: number;
  readonly seqLen: number;
  /** What the user should know: a run still training, settings changed since the checkpoint. */
  readonly notices: readonly string[];
}

export async function evaluateRun(options: EvaluateOptions): Promise<EvaluateResult> {
  const setup = setUpTraining(options.plan, options.specDir, options.ops, undefined, options.checkpoint ? runRandomWeightsSeed(options.checkpoint) : undefined);
  const batchSize = Number(setup.settings.batch);
  const seqLen = Number(setup.settings.seq_len);
  const batches = setup.dataset.evalBatches(batchSize, seqLen, options.batches);
  let model = setup.model;
  let what = `${options.plan.spec}, quantized, adapters at initialisation (B = 0)`;
  const notices: string[] = [];
  if (options.mergedModel) {
    const dense = readMergedModelAsDense(mergedModelPath(options.mergedModel));
    if (!sameArchitecture(dense.arch, options.plan.model.architecture)) {
      throw new TrainingError(`${options.mergedModel} is a model of another shape than spec ${options.plan.spec}'s`);
    }
    model = denseModel(dense, options.ops);
    what = `${options.mergedModel}, merged`;
  } else if (options.checkpoint && existsSync(options.checkpoint)) {
    const holder = runLockHolder(dirname(options.checkpoint));
    if (holder) notices.push(`note: ${dirname(options.checkpoint)} is still being written by ${holder}: this is its checkpoint as of now`);
    const { step, changes } = loadAdapters(options.checkpoint, options.plan, model);
    const changed = changesNotice(options.checkpoint, changes);
    if (changed) notices.push(changed);
    what = `${options.plan.spec}, quantized, adapters of ${options.checkpoint} (step ${step})`;
  }
  const { loss, tokens } = await heldOutLoss(model, batches);
  // The weights were checked finite when read, so a non-finite loss is an overflow in float32.
  if (!Number.isFinite(loss)) throw new TrainingError(`the held-out loss of ${what} is ${loss}: the model's activations overflow float32 (weights too large?)`);
  return { what, loss, tokens, batches: batches.length, batchSize, seqLen, notices };
}
