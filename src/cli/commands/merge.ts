import { join } from 'node:path';
import { defaultRunDir, planOf } from '../runtime-spec.ts';
import { UsageError, type Command } from '../usage.ts';

export const mergeCommand: Command = {
  name: 'merge',
  summary: 'Fold the adapters of a run into the zero points: the result is an INT-N model again (merged.safetensors in the run folder, float zeros: lossless). Checks that the merged model computes what the adapters did, then writes the formats of the spec\'s `export` block (as `qalc export` does, into export/FORMAT in the run folder or the block\'s `out`), reporting each.',
  usage: 'qalc merge SPEC [--out DIR]',
  options: {
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  optionHelp: {
    out: 'the run to merge (default: generated/<spec>/run); merged.safetensors is written there',
    help: 'show this help',
  },
  async run(positionals, values) {
    if (positionals.length !== 1) throw new UsageError('merge takes exactly one spec file', 'merge');
    const loaded = await planOf(positionals[0]!, 'merge');
    if (typeof loaded === 'number') return loaded;
    const { mergeRun } = await import('../../train/merge-run.ts');
    const { cpuBackend } = await import('../../runtime/cpu/backend.ts');
    const cpu = cpuBackend();
    if (cpu.notice) process.stderr.write(`${cpu.notice}\n`);
    const out = (values.out as string | undefined) ?? defaultRunDir(loaded.plan);
    const result = await mergeRun(loaded.plan, loaded.specDir, join(out, 'checkpoint.safetensors'), join(out, 'merged.safetensors'), cpu.ops);
    for (const notice of result.notices) process.stderr.write(`${notice}\n`);
    process.stderr.write(`merged the adapters of step ${result.step} into ${result.path}\n` +
      `check on a held-out batch: loss ${result.lossBefore.toFixed(6)} with adapters, ${result.lossAfter.toFixed(6)} merged (relative difference ${result.relativeDifference.toExponential(2)})\n`);
    // The spec's export block: each format written, or why not, but never passed over in silence.
    const { writeSpecExports } = await import('../../train/export-run.ts');
    for (const line of await writeSpecExports(loaded.plan, loaded.specDir, out, result.path, result.source)) process.stderr.write(`${line}\n`);
    return 0;
  },
};
