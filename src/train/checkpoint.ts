// A training checkpoint: every adapter's A and B, AdamW's moments and step count, and where the
// run is (the step; batches and dropout derive from (seed, step), so that is the data position
// and the RNG state at once). One safetensors file, written atomically; the previous one stays
// until the new one is complete.
import { existsSync } from 'node:fs';
import { readSafetensors, SafetensorsError, tensor, writeSafetensorsAtomic, type NamedTensor } from '../export/safetensors.ts';
import { firstNonFinite } from '../model/finite.ts';
import type { AdamW } from './adamw.ts';
import type { QaLoraModel } from './qalora-model.ts';

export const CHECKPOINT_FORMAT = 'qalc-train-checkpoint-1';

export interface RunIdentity {
  /** The spec's name and a hash of its plan: a checkpoint only resumes the run it came from. */
  readonly spec: string;
  readonly planHash: string;
  readonly seed: number;
}

export interface CheckpointState extends RunIdentity {
  readonly step: number;
}

export function saveCheckpoint(path: string, model: QaLoraModel, optimizer: AdamW, state: CheckpointState): void {
  const { m, v, step } = optimizer.state();
  if (step !== state.step) throw new Error(`optimizer is at step ${step}, the run at ${state.step}`);
  const tensors: NamedTensor[] = [];
  model.parameters().forEach((p, i) => {
    tensors.push({ name: p.name, shape: [p.value.length], data: Float32Array.from(p.value) });
    tensors.push({ name: `${p.name}.adam_m`, shape: [m[i]!.length], data: m[i]! });
    tensors.push({ name: `${p.name}.adam_v`, shape: [v[i]!.length], data: v[i]! });
  });
  writeSafetensorsAtomic(path, tensors, {
    format: CHECKPOINT_FORMAT, spec: state.spec, plan_hash: state.planHash, seed: String(state.seed), step: String(state.step),
  });
}

/** A tensor of the checkpoint, refused by name when it holds NaN or ±Infinity. */
function finiteTensor(file: ReturnType<typeof readSafetensors>, name: string, path: string) {
  const t = tensor(file, name, path);
  const bad = firstNonFinite(t.data);
  if (bad >= 0) throw new SafetensorsError(path, `tensor ${name} holds ${t.data[bad]} at index ${bad}: the run diverged, or the file is damaged`);
  return t;
}

/** Restores model and optimizer in place; returns the step to continue from. */
export function loadCheckpoint(path: string, model: QaLoraModel, optimizer: AdamW, expected: RunIdentity): number {
  if (!existsSync(path)) throw new SafetensorsError(path, 'no checkpoint to resume from');
  const file = readSafetensors(path);
  const meta = file.metadata;
  if (meta.format !== CHECKPOINT_FORMAT) throw new SafetensorsError(path, `not a qalc training checkpoint (format ${JSON.stringify(meta.format)})`);
  if (meta.spec !== expected.spec || meta.plan_hash !== expected.planHash) {
    throw new SafetensorsError(path, `was written by a run of spec '${meta.spec}' with another plan: it cannot resume this one (start again without --resume, or use another --out)`);
  }
  if (Number(meta.seed) !== expected.seed) throw new SafetensorsError(path, `was written with seed ${meta.seed}, this run has seed ${expected.seed}`);
  const step = Number(meta.step);
  const params = model.parameters();
  const m: Float64Array[] = [];
  const v: Float64Array[] = [];
  for (const p of params) {
    const value = finiteTensor(file, p.name, path).data;
    if (value.length !== p.value.length) throw new SafetensorsError(path, `tensor ${p.name} has ${value.length} values, the model ${p.value.length}`);
    p.value.set(value);
    m.push(Float64Array.from(finiteTensor(file, `${p.name}.adam_m`, path).data));
    v.push(Float64Array.from(finiteTensor(file, `${p.name}.adam_v`, path).data));
  }
  optimizer.restore({ step, m, v });
  return step;
}

/** Only the adapters of a run's checkpoint, for evaluation, merging and generation. */
export function loadAdapters(path: string, model: QaLoraModel, expected: Omit<RunIdentity, 'seed'>): number {
  const file = readSafetensors(path);
  if (file.metadata.format !== CHECKPOINT_FORMAT) throw new SafetensorsError(path, `not a qalc training checkpoint (format ${JSON.stringify(file.metadata.format)})`);
  if (file.metadata.spec !== expected.spec || file.metadata.plan_hash !== expected.planHash) {
    throw new SafetensorsError(path, `was written by a run of spec '${file.metadata.spec}' with another plan: its adapters do not fit this one`);
  }
  for (const p of model.parameters()) {
    const value = finiteTensor(file, p.name, path).data;
    if (value.length !== p.value.length) throw new SafetensorsError(path, `tensor ${p.name} has ${value.length} values, the model ${p.value.length}`);
    p.value.set(value);
  }
  return Number(file.metadata.step);
}
