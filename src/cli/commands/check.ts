import { UsageError, type Command } from '../usage.ts';

export const checkCommand: Command = {
  name: 'check',
  summary: 'Check specs: syntax, names, types, shapes against the model. Prints every error and warning; silent when clean.',
  usage: 'qalc check SPEC...',
  options: { help: { type: 'boolean', short: 'h' } },
  optionHelp: { help: 'show this help' },
  async run(specs) {
    // Loaded on demand, so `qalc --help` and the other verbs don't pay for this one's stages.
    const { frontEnd } = await import('../../compile.ts');
    const { reportDiagnostics } = await import('../report.ts');
    if (specs.length === 0) throw new UsageError('check needs at least one spec file', 'check');
    let status = 0;
    for (const spec of specs) status = Math.max(status, reportDiagnostics(frontEnd(spec)));
    return status;
  },
};
