import { join } from 'node:path';
import { writeFileAtomic } from '../write-file.ts';
import { UsageError, type Command } from '../usage.ts';

export const compileCommand: Command = {
  name: 'compile',
  summary: 'Compile a spec: check it, plan every layer, and write the plan and the generated TypeScript (model.ts, train.ts) to generated/<name>/ (or --out DIR).',
  usage: 'qalc compile SPEC [--out DIR]',
  options: {
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  optionHelp: {
    out: 'output directory (default: generated/<spec name>)',
    help: 'show this help',
  },
  async run(positionals, values) {
    // Loaded on demand, so `qalc --help` and the other verbs don't pay for this one's stages.
    const { frontEnd, compileOutputs } = await import('../../compile.ts');
    const { reportDiagnostics } = await import('../report.ts');
    if (positionals.length !== 1) throw new UsageError('compile takes exactly one spec file', 'compile');
    const result = frontEnd(positionals[0]!);
    const status = reportDiagnostics(result);
    if (!result.plan) return status;
    const out = (values.out as string | undefined) ?? join('generated', result.plan.spec);
    const files = await compileOutputs(result.plan, positionals[0]!, out);
    for (const file of files) writeFileAtomic(join(out, file.path), file.text);
    process.stderr.write(`wrote ${files.map((f) => f.path).join(', ')} to ${out}\n`);
    return status;
  },
};
