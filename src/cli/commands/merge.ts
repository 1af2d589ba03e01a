import { join } from 'node:path';
import { defaultRunDir, planOf } from '../runtime-spec.ts';
import { UsageError, type Command } from '../usage.ts';

export const mergeCommand: Command = {
  name: 'merge',
  summary: 'Fold the adapters of a run into the zero points: the result is an INT-N model again (merged.safetensors in the run folder, float zeros: lossless). Checks that the merged model computes what the adapters did.',
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
    return 0;
  },
};
