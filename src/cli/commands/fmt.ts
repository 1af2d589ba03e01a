import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../write-file.ts';
import { UsageError, type Command } from '../usage.ts';

export const fmtCommand: Command = {
  name: 'fmt',
  summary: 'Print specs in canonical form (two-space indent, `key = value`, comments kept). --write rewrites the files; --check only says which differ.',
  usage: 'qalc fmt SPEC... [--write | --check]',
  options: {
    write: { type: 'boolean', short: 'w' },
    check: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
  optionHelp: {
    write: 'rewrite the files in place',
    check: 'print the files that are not formatted and exit 1 if any',
    help: 'show this help',
  },
  async run(specs, values) {
    // Loaded on demand, so `qalc --help` and the other verbs don't pay for this one's stages.
    const { parseSource } = await import('../../syntax/parse.ts');
    const { formatSource } = await import('../../syntax/format.ts');
    const { reportDiagnostics } = await import('../report.ts');
    if (specs.length === 0) throw new UsageError('fmt needs at least one spec file', 'fmt');
    if (values.write && values.check) throw new UsageError('--write and --check do not go together', 'fmt');
    let status = 0;
    for (const path of specs) {
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (e) {
        throw new UsageError(`cannot read '${path}': ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 'fmt');
      }
      const parsed = parseSource(text, path);
      if (parsed.diagnostics.length > 0) {
        // Formatting a file that does not parse would lose what the parser could not read.
        status = Math.max(status, reportDiagnostics({ diagnostics: parsed.diagnostics, sources: new Map([[path, parsed.file.text]]) }));
        continue;
      }
      const formatted = formatSource(parsed.file);
      if (values.check) {
        if (formatted !== text) {
          process.stdout.write(`${path}\n`);
          status = 1;
        }
      } else if (values.write) {
        if (formatted !== text) writeFileAtomic(path, formatted);
      } else {
        process.stdout.write(formatted);
      }
    }
    return status;
  },
};
