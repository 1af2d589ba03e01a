import { frontEnd } from '../../compile.ts';
import { reportDiagnostics } from '../report.ts';
import { UsageError, type Command } from '../usage.ts';

export const checkCommand: Command = {
  name: 'check',
  summary: 'Check specs: syntax, names, types, shapes against the model. Prints every error and warning; silent when clean.',
  usage: 'qalc check SPEC...',
  options: { help: { type: 'boolean', short: 'h' } },
  optionHelp: { help: 'show this help' },
  run(specs) {
    if (specs.length === 0) throw new UsageError('check needs at least one spec file', 'check');
    let status = 0;
    for (const spec of specs) status = Math.max(status, reportDiagnostics(frontEnd(spec)));
    return status;
  },
};
