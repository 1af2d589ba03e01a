import { dirname, join } from 'node:path';
import { defaultRunDir, planOf } from '../runtime-spec.ts';
import { UsageError, type Command } from '../usage.ts';
import { EXPORT_FORMATS } from '../../export/formats.ts';

const FORMAT_NAMES = EXPORT_FORMATS.map((f) => f.name).join('|');

export const exportCommand: Command = {
  name: 'export',
  summary: 'Write a fine-tuned model in a format other tools load. The input is a spec (its run\'s adapters are merged first, as `qalc merge` does, and checked on a held-out batch) or a merged model (merged.safetensors, or a folder `--format qalc` wrote). Formats: ' +
    EXPORT_FORMATS.map((f) => `${f.name} — ${f.summary}`).join('; ') + '.',
  usage: `qalc export SPEC_OR_MERGED_MODEL --format ${FORMAT_NAMES} [--out DIR] [--run DIR] [--strict] [--dequantize] [--with-base]`,
  options: {
    format: { type: 'string' },
    out: { type: 'string' },
    run: { type: 'string' },
    strict: { type: 'boolean' },
    dequantize: { type: 'boolean' },
    'with-base': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
  optionHelp: {
    format: FORMAT_NAMES,
    out: 'a new (or empty) folder for the export (default: export/FORMAT in the run folder, or beside the merged model)',
    run: 'for a spec: the run to export (default generated/<spec>/run)',
    strict: 'refuse layers the format cannot hold exactly, instead of storing them in a wider type with a notice',
    dequantize: 'gguf: store every projection dequantized as F32 — exactly the float32 weights qalc runs, 8x larger — to tell Q4_1\'s rounding from everything else',
    'with-base': 'peft formats: also write base/ (the dequantized quantized base the adapter applies to, Hugging Face layout) and qalc-logits.json (qalc\'s logits on a prompt, to compare with PEFT)',
    help: 'show this help',
  },
  async run(positionals, values) {
    if (positionals.length !== 1) throw new UsageError('export takes exactly one spec or merged model', 'export');
    if (typeof values.format !== 'string') throw new UsageError(`--format is required: ${FORMAT_NAMES}`, 'export');
    const { exportFormat, ExportError } = await import('../../export/formats.ts');
    let format;
    try {
      format = exportFormat(values.format);
    } catch (e) {
      if (e instanceof ExportError) throw new UsageError(e.message, 'export');
      throw e;
    }
    // Refused before any work: a format that cannot be written yet.
    if (format.unavailable) throw new ExportError(`--format ${format.name}: ${format.unavailable}`);
    const { writeExport, occupiedReason } = await import('../../export/write-export.ts');
    const input = positionals[0]!;
    let prepared;
    let out = values.out as string | undefined;
    if (input.endsWith('.qal')) {
      const loaded = await planOf(input, 'export');
      if (typeof loaded === 'number') return loaded;
      const runDir = (values.run as string | undefined) ?? defaultRunDir(loaded.plan);
      out ??= join(runDir, 'export', format.name);
      const occupied = occupiedReason(out);
      if (occupied) throw new ExportError(occupied);
      const { exportFromRun } = await import('../../train/export-run.ts');
      const { cpuBackend } = await import('../../runtime/cpu/backend.ts');
      const cpu = cpuBackend();
      if (cpu.notice) process.stderr.write(`${cpu.notice}\n`);
      prepared = await exportFromRun(loaded.plan, loaded.specDir, join(runDir, 'checkpoint.safetensors'), cpu.ops);
    } else {
      if (values.run) throw new UsageError('--run is for a spec; a merged model is exported as it is', 'export');
      const { exportFromMerged, mergedModelPath } = await import('../../train/export-run.ts');
      out ??= join(dirname(mergedModelPath(input)), 'export', format.name);
      prepared = exportFromMerged(input);
    }
    for (const notice of prepared.notices) process.stderr.write(`${notice}\n`);
    if (prepared.check) {
      process.stderr.write(`merged ${prepared.source.description}; check on a held-out batch: loss ${prepared.check.lossBefore.toFixed(6)} with adapters, ${prepared.check.lossAfter.toFixed(6)} merged (relative difference ${prepared.check.relativeDifference.toExponential(2)})\n`);
    }
    const result = await writeExport(out, format, prepared.source, { strict: values.strict === true, dequantize: values.dequantize === true, withBase: values['with-base'] === true });
    for (const notice of result.notices) process.stderr.write(`${notice}\n`);
    process.stderr.write(`exported ${prepared.source.description} as ${format.name} into ${result.out}: ${result.files.join(', ')}\n`);
    return 0;
  },
};
