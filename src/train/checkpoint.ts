// A training checkpoint: every adapter's A and B, AdamW's moments and step count, and where the
// run is (the step; batches and dropout derive from (seed, step), so that is the data position
// and the RNG state at once). One safetensors file, written atomically; the previous one stays
// until the new one is complete. Its metadata also records what the run began with that a
// later segment must keep (the learning-rate schedule, the held-out loss before training) and
// the settings it was written under, so a later use can say what changed (run-identity.ts).
import { existsSync } from 'node:fs';
import { RANDOM_WEIGHTS_GENERATOR } from '../model/random-weights.ts';
import { readSafetensors, SafetensorsError, tensor, writeSafetensorsAtomic, type NamedTensor, type SafetensorsFile } from '../export/safetensors.ts';
import type { Plan } from '../plan/plan.ts';
import { firstNonFinite } from '../model/finite.ts';
import type { Optimizer } from '../runtime/optimizer.ts';
import type { QaLoraModel } from './qalora-model.ts';
import { adapterHash, legacyPlanHash, recordedSettings, settingChanges, type RecordedSettings } from './run-identity.ts';

export const CHECKPOINT_FORMAT = 'qalc-train-checkpoint-1';

/** The learning-rate schedule a run began with: a resumed segment keeps it. */
export interface ScheduleRecord {
  readonly kind: 'constant' | 'linear' | 'cosine';
  readonly peak: number;
  readonly warmup: number;
  /** Steps over which linear and cosine decay to 0. */
  readonly total: number;
}

export interface CheckpointState {
  readonly step: number;
  readonly seed: number;
  readonly schedule: ScheduleRecord;
  readonly evalLossBefore: number;
  /** The seed of the random base weights the run trained on (--random-weights), if it did. */
  readonly randomWeightsSeed?: number;
}

/** A checkpoint read and checked against a plan, not yet loaded into a model. */
export interface OpenedCheckpoint {
  readonly path: string;
  readonly step: number;
  /** Absent in checkpoints written before it was recorded. */
  readonly schedule?: ScheduleRecord;
  readonly evalLossBefore?: number;
  readonly randomWeightsSeed?: number;
  /** The settings that differ between the checkpoint's run and the plan (see settingChanges). */
  readonly changes: readonly string[];
  readonly file: SafetensorsFile;
}

export function saveCheckpoint(path: string, plan: Plan, model: QaLoraModel, optimizer: Optimizer, state: CheckpointState): void {
  const { m, v, step } = optimizer.state();
  if (step !== state.step) throw new Error(`optimizer is at step ${step}, the run at ${state.step}`);
  const tensors: NamedTensor[] = [];
  model.parameters().forEach((p, i) => {
    tensors.push({ name: p.name, shape: [p.value.length], data: Float32Array.from(p.value) });
    tensors.push({ name: `${p.name}.adam_m`, shape: [m[i]!.length], data: m[i]! });
    tensors.push({ name: `${p.name}.adam_v`, shape: [v[i]!.length], data: v[i]! });
  });
  writeSafetensorsAtomic(path, tensors, {
    format: CHECKPOINT_FORMAT, spec: plan.spec, adapter_hash: adapterHash(plan), seed: String(state.seed), step: String(state.step),
    schedule: JSON.stringify(state.schedule), eval_loss_before: String(state.evalLossBefore), settings: JSON.stringify(recordedSettings(plan)),
    ...(state.randomWeightsSeed !== undefined ? { random_weights_seed: String(state.randomWeightsSeed), random_weights_generator: RANDOM_WEIGHTS_GENERATOR } : {}),
  });
}

/** A tensor of the checkpoint, refused by name when it holds NaN or ±Infinity. */
function finiteTensor(file: SafetensorsFile, name: string, path: string) {
  const t = tensor(file, name, path);
  const bad = firstNonFinite(t.data);
  if (bad >= 0) throw new SafetensorsError(path, `tensor ${name} holds ${t.data[bad]} at index ${bad}: the run diverged, or the file is damaged`);
  return t;
}

/**
 * Reads a checkpoint and checks that its adapters fit the plan's; `misfit` ends the error
 * message (what the caller cannot do with it).
 */
export function openCheckpoint(path: string, plan: Plan, misfit: string): OpenedCheckpoint {
  if (!existsSync(path)) throw new SafetensorsError(path, 'no checkpoint to resume from');
  const file = readSafetensors(path);
  const meta = file.metadata;
  if (meta.format !== CHECKPOINT_FORMAT) throw new SafetensorsError(path, `not a qalc training checkpoint (format ${JSON.stringify(meta.format)})`);
  const fits = meta.adapter_hash !== undefined ? meta.adapter_hash === adapterHash(plan) : meta.spec === plan.spec && meta.plan_hash === legacyPlanHash(plan);
  if (!fits) {
    throw new SafetensorsError(path, `was written by a run of spec '${meta.spec}' whose adapters differ from this plan's (model shapes, layers, quantization or adapter kind, rank, alpha, pooling, dtype): ${misfit}`);
  }
  const recorded = meta.settings === undefined ? undefined : (JSON.parse(meta.settings) as RecordedSettings);
  const renamed = meta.spec === plan.spec ? [] : [`spec ${meta.spec} → ${plan.spec}`];
  return {
    path,
    step: Number(meta.step),
    ...(meta.schedule !== undefined ? { schedule: JSON.parse(meta.schedule) as ScheduleRecord } : {}),
    ...(meta.eval_loss_before !== undefined ? { evalLossBefore: Number(meta.eval_loss_before) } : {}),
    ...(meta.random_weights_seed !== undefined ? { randomWeightsSeed: recordedRandomWeightsSeed(path, meta) } : {}),
    changes: [...renamed, ...(recorded ? settingChanges(recorded, recordedSettings(plan)) : [])],
    file,
  };
}

function restoreAdapters(opened: OpenedCheckpoint, model: QaLoraModel): void {
  for (const p of model.parameters()) {
    const value = finiteTensor(opened.file, p.name, opened.path).data;
    if (value.length !== p.value.length) throw new SafetensorsError(opened.path, `tensor ${p.name} has ${value.length} values, the model ${p.value.length}`);
    p.value.set(value);
  }
}

/** Restores model and optimizer in place, to continue from `opened.step`. */
export function restoreTraining(opened: OpenedCheckpoint, model: QaLoraModel, optimizer: Optimizer): void {
  restoreAdapters(opened, model);
  const params = model.parameters();
  const m = params.map((p) => Float64Array.from(finiteTensor(opened.file, `${p.name}.adam_m`, opened.path).data));
  const v = params.map((p) => Float64Array.from(finiteTensor(opened.file, `${p.name}.adam_v`, opened.path).data));
  optimizer.restore({ step: opened.step, m, v });
}

/** Only the adapters of a run's checkpoint, for evaluation, merging and generation. */
export function loadAdapters(path: string, plan: Plan, model: QaLoraModel): { step: number; changes: readonly string[] } {
  const opened = openCheckpoint(path, plan, 'its adapters do not fit this one');
  restoreAdapters(opened, model);
  return { step: opened.step, changes: opened.changes };
}

/** The notice for a checkpoint used under settings other than those it was written with. */
export function changesNotice(path: string, changes: readonly string[], consequence = ''): string | undefined {
  return changes.length === 0 ? undefined : `note: ${path} was written under other settings than the spec's now: ${changes.join('; ')}${consequence}`;
}

/**
 * The seed of the random base weights a run trained on, read from its checkpoint, or undefined
 * when it trained on real weights or there is no run: eval, merge and generate rebuild the same
 * weights from it.
 */
export function runRandomWeightsSeed(path: string): number | undefined {
  if (!existsSync(path)) return undefined;
  const meta = readSafetensors(path).metadata;
  return meta.random_weights_seed === undefined ? undefined : recordedRandomWeightsSeed(path, meta);
}

/** The checkpoint's random-weights seed, refused when this qalc's generator would draw other weights from it. */
function recordedRandomWeightsSeed(path: string, meta: Readonly<Record<string, string>>): number {
  const generator = meta.random_weights_generator;
  if (generator !== RANDOM_WEIGHTS_GENERATOR) {
    throw new SafetensorsError(path, `was trained on random weights seeded ${meta.random_weights_seed} from ${generator === undefined ? "qalc's first generator (Box–Muller, before the generator was recorded)" : `the generator ${generator}`}; ` +
      `this qalc draws other weights from that seed (${RANDOM_WEIGHTS_GENERATOR}), so the run cannot be resumed, evaluated or merged: train it again`);
  }
  return Number(meta.random_weights_seed);
}
