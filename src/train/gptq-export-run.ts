// A spec's run (or, with no run, its quantized model with the adapters at initialisation)
// exported as a GPTQ checkpoint through `qalc export`'s gptq format, with what the export costs
// measured on the held-out batches `qalc eval` uses: per layer the weight error of rounding the
// merged zeros to integers and the scales to fp16, and the held-out loss of the checkpoint as
// written (read back by qalc's GPTQ reader) against the lossless merged model. Written into a
// temporary folder and renamed into place (src/export/write-export.ts); `out` must be new or empty.
import { exportFormat } from '../export/formats.ts';
import type { GptqWritten } from '../export/gptq-checkpoint.ts';
import { writeExport } from '../export/write-export.ts';
import type { Plan } from '../plan/plan.ts';
import type { ZeroFormat } from '../quant/gptq-pack.ts';
import type { TrainingOps } from '../runtime/ops.ts';
import { mergedRun } from './export-source.ts';

export { GPTQ_EXPORT_REPORT } from '../export/formats.ts';

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

export interface GptqExportResult {
  readonly out: string;
  readonly files: readonly string[];
  readonly notices: readonly string[];
  readonly report: GptqWritten['report'];
  readonly heldOut: { readonly lossless: number; readonly gptq: number; readonly difference: number; readonly tokens: number };
}

export async function exportGptqRun(plan: Plan, specDir: string, checkpoint: string | undefined, out: string, options: GptqExportOptions = {}): Promise<GptqExportResult> {
  const say = options.report ?? ((line: string) => process.stderr.write(`${line}\n`));
  const notices: string[] = [];
  const { source } = await mergedRun(plan, specDir, checkpoint, {
    ...(options.ops ? { ops: options.ops } : {}), notices, report: say,
    ...(options.batches !== undefined ? { heldOutBatches: options.batches } : {}),
  });
  for (const notice of notices) say(notice);
  const format = exportFormat(options.format === 'gptq_v2' ? 'gptq-v2' : 'gptq');
  const result = await writeExport(out, format, source, options.strict ? { strict: true } : {});
  for (const notice of result.notices) say(notice);
  const report = result.report as unknown as GptqWritten['report'] & { heldOut: GptqExportResult['heldOut'] };
  return { out: result.out, files: result.files, notices: result.notices, report, heldOut: report.heldOut };
}
