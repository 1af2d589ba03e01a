import { UsageError, type Command } from '../usage.ts';

export const checkCommand: Command = {
  name: 'check',
  summary: 'Check specs: syntax, names, types, shapes against the model. Prints every error and warning (the first 20 of each, then a count); silent when clean. --json prints them on stdout as one JSON document for editors and CI.',
  usage: 'qalc check SPEC... [--json] [--max-errors N]',
  options: {
    json: { type: 'boolean' },
    'max-errors': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  optionHelp: {
    json: 'print {"diagnostics": [{file, line, column, endLine, endColumn, severity, message, hint}], "errors", "warnings", "omitted": {"errors", "warnings"}} on stdout instead; lines and columns count from 1, the end is just after the span',
    'max-errors': 'show at most N errors and N warnings of each spec (default 20; 0 shows all)',
    help: 'show this help',
  },
  async run(specs, values) {
    // Loaded on demand, so `qalc --help` and the other verbs don't pay for this one's stages.
    const { frontEnd } = await import('../../compile.ts');
    const { reportDiagnostics } = await import('../report.ts');
    const { DEFAULT_DIAGNOSTIC_LIMIT } = await import('../../diagnostics/render.ts');
    if (specs.length === 0) throw new UsageError('check needs at least one spec file', 'check');
    const limit = values['max-errors'] === undefined ? DEFAULT_DIAGNOSTIC_LIMIT : Number(values['max-errors']);
    if (!(Number.isSafeInteger(limit) && limit >= 0)) throw new UsageError(`--max-errors must be a non-negative integer, not '${String(values['max-errors'])}'`, 'check');
    if (values.json) {
      const { diagnosticsDocument } = await import('../../diagnostics/json.ts');
      const document = diagnosticsDocument(specs.map((spec) => frontEnd(spec)), limit);
      process.stdout.write(JSON.stringify(document, null, 2) + '\n');
      return document.errors > 0 ? 1 : 0;
    }
    let status = 0;
    for (const spec of specs) status = Math.max(status, reportDiagnostics(frontEnd(spec), limit));
    return status;
  },
};
