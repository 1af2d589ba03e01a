// `qalc merge`: a run's adapters folded into the zero points and written as qalc's merged
// model; then both models run one held-out batch, and the merge is refused if they disagree.
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { readMergedModelAsDense, writeMergedModel } from '../export/merged-model.ts';
import type { ExportSource } from '../export/formats.ts';
import type { Plan } from '../plan/plan.ts';
import type { TrainingOps } from '../runtime/ops.ts';
import { mergedRun } from './export-source.ts';
import { lockRunFolder } from './run-lock.ts';
import { TrainingError } from './trainer.ts';

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
  // The check runs the merged file as read back, not the model in memory.
  const { step, source, check } = await mergedRun(plan, specDir, checkpoint, {
    ...(ops ? { ops } : {}), notices, refusal: `${path} is wrong`,
    checked: (merged) => {
      writeMergedModel(path, merged);
      return readMergedModelAsDense(path);
    },
  });
  return { path, step, ...check, source };
}
