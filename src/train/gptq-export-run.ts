// A spec's run exported as a GPTQ v1 checkpoint (src/export/gptq-checkpoint.ts), with what the
// export costs measured: per layer the weight error of rounding the merged zeros to integers
// and the scales to fp16, and the held-out loss of the checkpoint as written (read back by
// qalc's GPTQ reader) against the lossless merged model, on the held-out batches `qalc eval`
// uses. Everything is written into a temporary folder beside `out` — the report
// (gptq-export.json) included — and renamed into place at the end; `out` must be new or empty.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { mergedDenseCheckpoint, mergedProjections } from '../export/merged-model.ts';
import { GptqExportError, writeGptqDirectory, type GptqSource, type GptqWritten } from '../export/gptq-checkpoint.ts';
import { readGptqCheckpoint } from '../model/gptq-checkpoint.ts';
import type { ZeroFormat } from '../quant/gptq-pack.ts';
import type { Plan } from '../plan/plan.ts';
import type { TrainingOps } from '../runtime/ops.ts';
import { PROJECTIONS, type ProjectionName } from './qalora-spec.ts';
import { changesNotice, loadAdapters } from './checkpoint.ts';
import { denseModel } from './dense-model.ts';
import { heldOutLoss } from './held-out-loss.ts';
import { setUpTraining } from './trainer.ts';

export const GPTQ_EXPORT_REPORT = 'gptq-export.json';

/** Files of a Hugging Face checkpoint folder that travel with its weights. */
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer.model', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json'];

export interface GptqExportOptions {
  readonly ops?: TrainingOps;
  /** Refuse layers GPTQ cannot pack instead of writing them as float32. */
  readonly strict?: boolean;
  /** `gptq` (v1, the default) or `gptq_v2` (GPTQModel: zeros of 0 storable). */
  readonly format?: ZeroFormat;
  /** The first this many held-out batches; all of them by default. */
  readonly batches?: number;
  /** Progress and notices, a line at a time. */
  readonly report?: (line: string) => void;
}

export interface GptqExportResult extends GptqWritten {
  readonly out: string;
  readonly heldOut: { readonly lossless: number; readonly gptq: number; readonly difference: number; readonly tokens: number };
}

function refuseOccupied(out: string): void {
  const stat = statSync(out, { throwIfNoEntry: false });
  if (!stat) return;
  if (!stat.isDirectory()) throw new GptqExportError(`${out} exists and is not a folder`);
  if (readdirSync(out).length > 0) throw new GptqExportError(`${out} is not empty${existsSync(join(out, GPTQ_EXPORT_REPORT)) ? ' (it holds a GPTQ export)' : ''}: an export goes into a new or empty folder`);
}

export async function exportGptqRun(plan: Plan, specDir: string, checkpoint: string | undefined, out: string, options: GptqExportOptions = {}): Promise<GptqExportResult> {
  const say = options.report ?? ((line: string) => process.stderr.write(`${line}\n`));
  refuseOccupied(out);
  const { model, weights, dataset, settings } = setUpTraining(plan, specDir, options.ops, say);
  let description = `spec ${plan.spec}, quantized, adapters at initialisation (no run at ${checkpoint ?? '—'})`;
  if (checkpoint && existsSync(checkpoint)) {
    const { step, changes } = loadAdapters(checkpoint, plan, model);
    description = `spec ${plan.spec}, run ${dirname(checkpoint)} (step ${step})`;
    const changed = changesNotice(checkpoint, changes);
    if (changed) say(changed);
  }
  const tokenizerPath = plan.model.tokenizer ? resolve(specDir, plan.model.tokenizer) : undefined;
  const checkpointDir = plan.model.checkpoint ? resolve(specDir, plan.model.checkpoint.path) : undefined;
  const extraFiles = new Map<string, Uint8Array>();
  if (checkpointDir && statSync(checkpointDir, { throwIfNoEntry: false })?.isDirectory()) {
    for (const name of TOKENIZER_FILES) if (existsSync(join(checkpointDir, name))) extraFiles.set(name, readFileSync(join(checkpointDir, name)));
  }
  const source: GptqSource = {
    arch: model.arch, tokenEmbedding: weights.tokenEmbedding, rmsFinal: weights.rmsFinal, classifier: weights.classifier,
    blocks: mergedProjections(model, weights).map((projections, l) => ({
      rmsAtt: weights.layers[l]!.rmsAtt, rmsFfn: weights.layers[l]!.rmsFfn,
      projections: Object.fromEntries(PROJECTIONS.map((p, i) => [p, projections[i]!])) as Record<ProjectionName, (typeof projections)[number]>,
    })),
    ...(tokenizerPath ? { tokenizer: { name: basename(tokenizerPath), bytes: readFileSync(tokenizerPath) } } : {}),
  };

  mkdirSync(dirname(out), { recursive: true });
  const temporary = join(dirname(out), `.${basename(out)}.${process.pid}.partial`);
  rmSync(temporary, { recursive: true, force: true });
  mkdirSync(temporary);
  try {
    const written = writeGptqDirectory(temporary, source, { ...(options.strict ? { strict: true } : {}), ...(options.format ? { format: options.format } : {}), extraFiles });
    for (const notice of written.notices) say(notice);
    const batches = dataset.evalBatches(Number(settings.batch), Number(settings.seq_len), options.batches);
    const lossless = await heldOutLoss(denseModel(mergedDenseCheckpoint(model, weights), options.ops), batches);
    const exported = await heldOutLoss(denseModel(readGptqCheckpoint(temporary), options.ops), batches);
    const heldOut = { lossless: lossless.loss, gptq: exported.loss, difference: exported.loss - lossless.loss, tokens: lossless.tokens };
    for (const layer of written.report.layers) {
      say(`gptq export ${layer.layer}: ${layer.bits}-bit, group ${layer.group}: weight error max ${layer.maxAbsError.toExponential(3)}, mean ${layer.meanAbsError.toExponential(3)}${layer.clampedGroups ? `, ${layer.clampedGroups} zeros clamped` : ''}`);
    }
    say(`gptq export: held-out loss ${heldOut.gptq.toFixed(6)} against the lossless merged model's ${heldOut.lossless.toFixed(6)} (${heldOut.difference >= 0 ? '+' : ''}${heldOut.difference.toExponential(3)}, over ${heldOut.tokens} tokens)`);
    writeFileSync(join(temporary, GPTQ_EXPORT_REPORT), JSON.stringify({ format: options.format ?? 'gptq', source: description, ...written.report, heldOut, notices: written.notices }, null, 2) + '\n');
    if (existsSync(out)) rmdirSync(out); // empty, checked above
    renameSync(temporary, out);
    return { ...written, files: [...written.files, GPTQ_EXPORT_REPORT], out, heldOut };
  } catch (e) {
    rmSync(temporary, { recursive: true, force: true });
    throw e;
  }
}
