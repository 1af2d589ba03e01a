// `qalc merge`: a run's adapters folded into the zero points and written as qalc's merged
// model; then both models run one held-out batch, and the merge is refused if they disagree.
import { existsSync } from 'node:fs';
import { mergeModel, readMergedModelAsDense, writeMergedModel } from '../export/merged-model.ts';
import type { ExportSource } from '../export/formats.ts';
import { adaptersOf, checkpointFilesOf, mergedOf } from './export-source.ts';
import type { Plan } from '../plan/plan.ts';
import { dirname } from 'node:path';
import { changesNotice, loadAdapters, runRandomWeightsSeed } from './checkpoint.ts';
import { denseModel } from './dense-model.ts';
import { heldOutLoss } from './held-out-loss.ts';
import type { TrainingOps } from '../runtime/ops.ts';
import { lockRunFolder } from './run-lock.ts';
import { setUpTraining, TrainingError } from './trainer.ts';

/** Float32 activations through a different order of operations: well within this. */
export const MERGE_TOLERANCE = 1e-4;

export interface MergeResult {
  readonly path: string;
  readonly step: number;
  readonly lossBefore: number;
  readonly lossAfter: number;
  readonly relativeDifference: number;
  /** Settings changed since the checkpoint was written, a stale lock taken over. */
  readonly notices: readonly string[];
  /** What the spec's other export formats are written from. */
  readonly source: ExportSource;
}

export async function mergeRun(plan: Plan, specDir: string, checkpoint: string, path: string, ops?: TrainingOps): Promise<MergeResult> {
  if (!existsSync(checkpoint)) throw new TrainingError(`no run to merge: ${checkpoint} does not exist (train first, or give --out)`);
  // The merged model goes into the run folder: not while a training writes it (its checkpoint
  // would be a moving target), nor two merges at once.
  const notices: string[] = [];
  const lock = lockRunFolder(dirname(path), 'merge', (text) => notices.push(text));
  try {
    return { ...(await mergeLocked(plan, specDir, checkpoint, path, ops, notices)), notices };
  } finally {
    lock.release();
  }
}

async function mergeLocked(plan: Plan, specDir: string, checkpoint: string, path: string, ops: TrainingOps | undefined, notices: string[]): Promise<Omit<MergeResult, 'notices'>> {
  const { model, weights, dataset, settings } = setUpTraining(plan, specDir, ops, undefined, runRandomWeightsSeed(checkpoint));
  const { step, changes } = loadAdapters(checkpoint, plan, model);
  const changed = changesNotice(checkpoint, changes);
  if (changed) notices.push(changed);
  const merged = mergedOf(plan, specDir, model, weights);
  writeMergedModel(path, merged);

  const [batch] = dataset.evalBatches(Number(settings.batch), Number(settings.seq_len), 1);
  const lossBefore = await model.forward(batch!);
  const dense = readMergedModelAsDense(path);
  const lossAfter = await denseModel(dense, ops).forward(batch!);
  const relativeDifference = Math.abs(lossAfter - lossBefore) / Math.abs(lossBefore);
  if (!(relativeDifference <= MERGE_TOLERANCE)) {
    throw new TrainingError(`the merged model's loss ${lossAfter} differs from the adapters' ${lossBefore} by ${relativeDifference.toExponential(2)} (more than ${MERGE_TOLERANCE}): ${path} is wrong; please report this`);
  }
  const source: ExportSource = {
    description: `spec ${plan.spec}, run ${dirname(checkpoint)} (step ${step})`, merged,
    adapters: adaptersOf(plan, model), base: mergeModel(model, weights, plan.spec, { foldAdapters: false }),
    checkpointFiles: checkpointFilesOf(plan, specDir),
    heldOut: (model) => heldOutLoss(denseModel(model, ops), dataset.evalBatches(Number(settings.batch), Number(settings.seq_len))),
  };
  return { path, step, lossBefore, lossAfter, relativeDifference, source };
}

