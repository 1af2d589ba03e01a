// A run folder's records: train.jsonl, one line per step, is the run's history, and
// summary.json and loss.svg are rebuilt from all of it at the end of every segment, so a run
// that was resumed is described as a whole, exactly as one that never stopped.
import type { DeviceStats } from '../runtime/ops.ts';
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../write-file.ts';
import { join } from 'node:path';
import { lossCurveSvg, type LossPoint } from './loss-plot.ts';

/** One line of train.jsonl. */
export interface StepRecord {
  readonly step: number;
  readonly loss: number;
  readonly lr: number;
  readonly grad_norm: number;
  readonly tokens_per_s: number;
  /** Training time of the step; a held-out evaluation after it is eval_seconds. */
  readonly seconds: number;
  readonly eval_loss?: number;
  readonly eval_perplexity?: number;
  readonly eval_tokens?: number;
  readonly eval_seconds?: number;
  /** A profiled device run's time of this step by kind (linear, attention, lm_head, other, copy, host), in ms: QALC_CUDA_PROFILE. */
  readonly profile_ms?: Readonly<Record<string, number>>;
  /** On a device backend: how the step's backward ran (cuda/step-graph.ts): launched, traced, captured or replayed from the CUDA graph. */
  readonly backward?: 'launched' | 'traced' | 'captured' | 'replayed';
}

export interface TrainSummary {
  readonly steps: number;
  /** Where this segment began, when it resumed a run. */
  readonly resumedFrom: number | null;
  readonly firstLoss: number;
  readonly lastLoss: number;
  readonly evalLossBefore: number;
  readonly evalLossAfter: number;
  /** Held-out target tokens each evaluation averages over. */
  readonly evalTokens: number;
  /** Training throughput over the whole run. */
  readonly tokensPerSecond: number;
  /** Training and held-out evaluation time over the whole run (setup not counted). */
  readonly seconds: number;
  readonly evalSeconds: number;
  /** Set when the run trained on seeded random weights (--random-weights): its losses mean nothing about a real model. */
  readonly randomWeightsSeed?: number;
  /** A device backend's measurements of this segment (peak device memory, kernel launches). */
  readonly device?: DeviceStats;
  /** A device backend's line on how the steps ran: the backward as a CUDA graph, or launched and why (cuda/step-graph.ts). */
  readonly stepGraph?: string;
}

function parse(line: string): StepRecord | undefined {
  try {
    return JSON.parse(line) as StepRecord;
  } catch {
    return undefined; // a line cut short by a kill
  }
}

export function readLog(path: string): StepRecord[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '').map(parse).filter((r): r is StepRecord => r !== undefined);
}

/** On resume, the log keeps exactly the steps the checkpoint holds. */
export function truncateLog(path: string, lastStep: number): void {
  if (!existsSync(path)) return;
  writeFileAtomic(path, readLog(path).filter((r) => r.step <= lastStep).map((r) => JSON.stringify(r) + '\n').join(''));
}

export interface RunStart {
  readonly resumedFrom: number | null;
  readonly evalLossBefore: number;
  readonly evalTokens: number;
  readonly randomWeightsSeed?: number;
  readonly device?: DeviceStats;
  readonly stepGraph?: string;
}

export function summarise(records: readonly StepRecord[], start: RunStart): TrainSummary {
  const evals = records.filter((r) => r.eval_loss !== undefined);
  const trainSeconds = records.reduce((s, r) => s + r.seconds, 0);
  const evalSeconds = evals.reduce((s, r) => s + (r.eval_seconds ?? 0), 0);
  const tokens = records.reduce((s, r) => s + r.tokens_per_s * r.seconds, 0);
  return {
    steps: records.at(-1)?.step ?? 0,
    resumedFrom: start.resumedFrom,
    ...(start.randomWeightsSeed !== undefined ? { randomWeightsSeed: start.randomWeightsSeed } : {}),
    firstLoss: records[0]?.loss ?? NaN,
    lastLoss: records.at(-1)?.loss ?? NaN,
    evalLossBefore: start.evalLossBefore,
    evalLossAfter: evals.at(-1)?.eval_loss ?? start.evalLossBefore,
    evalTokens: start.evalTokens,
    tokensPerSecond: tokens / trainSeconds,
    seconds: trainSeconds + evalSeconds,
    evalSeconds,
    ...(start.device !== undefined ? { device: start.device } : {}),
    ...(start.stepGraph !== undefined ? { stepGraph: start.stepGraph } : {}),
  };
}

/** summary.json and loss.svg of the whole run, from its log. */
export function writeRunReport(out: string, spec: string, start: RunStart): TrainSummary {
  const records = readLog(join(out, 'train.jsonl'));
  const summary = summarise(records, start);
  const trainPoints: LossPoint[] = records.map((r) => ({ step: r.step, loss: r.loss }));
  const evalPoints: LossPoint[] = [{ step: 0, loss: start.evalLossBefore }, ...records.filter((r) => r.eval_loss !== undefined).map((r) => ({ step: r.step, loss: r.eval_loss! }))];
  writeFileAtomic(join(out, 'loss.svg'), lossCurveSvg(`${spec}: QA-LoRA fine-tuning`, trainPoints, evalPoints));
  writeFileAtomic(join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  return summary;
}
