// What `qalc export` exports from: a spec's run (its adapters merged here, exactly as `qalc
// merge` does, and checked the same way on a held-out batch) or a model `qalc merge` or
// `qalc export --format qalc` already wrote. The run folder is only read.
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { readMergedModel } from '../export/merged-model.ts';
import { ExportError, exportFormat, type ExportSource } from '../export/formats.ts';
import { occupiedReason, writeExport } from '../export/write-export.ts';
import { isInputError } from '../diagnostics/input-errors.ts';
import type { Plan } from '../plan/plan.ts';
import type { TrainingOps } from '../runtime/ops.ts';
import { mergedRun } from './export-source.ts';
import { runLockHolder } from './run-lock.ts';
import { TrainingError } from './trainer.ts';

export interface PreparedExport {
  readonly source: ExportSource;
  readonly notices: readonly string[];
  /** The held-out check of the merge, when this export merged a run. */
  readonly check?: { readonly lossBefore: number; readonly lossAfter: number; readonly relativeDifference: number };
}

/** A spec's run: merged in memory, checked on a held-out batch, with its adapters and base. */
export async function exportFromRun(plan: Plan, specDir: string, checkpoint: string, ops?: TrainingOps): Promise<PreparedExport> {
  if (!existsSync(checkpoint)) throw new TrainingError(`no run to export: ${checkpoint} does not exist (train first, or give --run DIR)`);
  const notices: string[] = [];
  const holder = runLockHolder(dirname(checkpoint));
  if (holder) notices.push(`note: ${dirname(checkpoint)} is still being written by ${holder}: this exports its checkpoint as of now`);
  const { source, check } = await mergedRun(plan, specDir, checkpoint, { ...(ops ? { ops } : {}), notices });
  return { source, notices, check };
}

/** The merged model a path names: a .safetensors file, a qalc export folder, or a run folder holding merged.safetensors. */
export function mergedModelPath(input: string): string {
  const stat = statSync(input, { throwIfNoEntry: false });
  if (!stat) throw new ExportError(`${input}: no such file or folder`);
  if (!stat.isDirectory()) return input;
  for (const name of ['model.safetensors', 'merged.safetensors']) {
    if (existsSync(join(input, name))) return join(input, name);
  }
  if (existsSync(join(input, 'checkpoint.safetensors'))) {
    throw new ExportError(`${input} is a run folder with no merged model: it holds the adapters, not the base model they apply to: give its spec (qalc export SPEC --run ${input}), or run qalc merge first`);
  }
  throw new ExportError(`${input} holds no qalc model (no model.safetensors or merged.safetensors)`);
}

export function exportFromMerged(input: string): PreparedExport {
  const path = mergedModelPath(input);
  return { source: { description: path, merged: readMergedModel(path) }, notices: [] };
}

/** One line per format of the spec's `export { formats = … }`: what `qalc merge` wrote, or why not. */
export async function writeSpecExports(plan: Plan, specDir: string, runDir: string, mergedPath: string, source: ExportSource): Promise<string[]> {
  const formats = (plan.export?.formats as readonly string[] | undefined) ?? [];
  const outRoot = plan.export?.out !== undefined ? resolve(specDir, String(plan.export.out)) : runDir;
  const lines: string[] = [];
  for (const name of formats) lines.push(await specExport(name, outRoot, mergedPath, source));
  return lines;
}

/** One format of the spec's export block, written into OUT_ROOT/export/FORMAT: what was written, or why not. */
async function specExport(name: string, outRoot: string, mergedPath: string, source: ExportSource): Promise<string> {
  const format = exportFormat(name);
  if (format.name === 'qalc') return `export ${name}: ${mergedPath} is qalc's own format (lossless)`;
  if (format.unavailable) return `export ${name}: skipped: ${format.unavailable}`;
  const out = join(outRoot, 'export', format.name);
  const occupied = occupiedReason(out);
  if (occupied) return `export ${name}: skipped: ${occupied}`;
  let result;
  try {
    result = await writeExport(out, format, source);
  } catch (e) {
    // What this format cannot hold is reported like the rest; the merge itself stands.
    if (isInputError(e)) return `export ${name}: skipped: ${e.message}`;
    throw e;
  }
  return [`export ${name}: wrote ${result.files.join(', ')} into ${out}`, ...result.notices.map((n) => `  ${n}`)].join('\n');
}
