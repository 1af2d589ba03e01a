// `qalc VERB …`: dispatch, help, and the exit status contract —
// 0 clean, 1 errors in a spec or on the command line, 2 a bug in qalc.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../project-root.ts';
import { checkCommand } from './commands/check.ts';
import { compileCommand } from './commands/compile.ts';
import { fmtCommand } from './commands/fmt.ts';
import { inspectCommand } from './commands/inspect.ts';
import { trainCommand } from './commands/train.ts';
import { evalCommand } from './commands/eval.ts';
import { mergeCommand } from './commands/merge.ts';
import { generateCommand } from './commands/generate.ts';
import { exportCommand } from './commands/export.ts';
import { isInputError } from '../diagnostics/input-errors.ts';
import { printable } from '../diagnostics/printable.ts';
import { UnknownBackendError } from '../runtime/backend.ts';
import { describeSystemError, isSystemError } from '../system-error.ts';
import { helpText, parse, UsageError, type Command } from './usage.ts';

const COMMANDS: readonly Command[] = [checkCommand, inspectCommand, fmtCommand, compileCommand, trainCommand, evalCommand, mergeCommand, exportCommand, generateCommand];

function version(): string {
  const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'qalc — a compiler for quantization-aware low-rank adaptation (QA-LoRA) of LLaMA models',
    '',
    'usage: qalc VERB [options]',
    '',
    'verbs:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary.split('. ')[0]!.replace(/\.$/, '')}`),
    '',
    'Run `qalc VERB --help` for a verb\'s options. Exit status: 0 clean, 1 errors in the spec or the command line, 2 a bug in qalc.',
  ].join('\n');
}

/** `commands` is there for tests, which add one that fails the way a bug would. */
export async function main(argv: string[], commands: readonly Command[] = COMMANDS): Promise<number> {
  const [verb, ...rest] = argv;
  try {
    if (verb === undefined || verb === '--help' || verb === '-h' || verb === 'help') {
      process.stdout.write(overview() + '\n');
      return verb === undefined ? 1 : 0;
    }
    if (verb === '--version' || verb === '-V') {
      process.stdout.write(`qalc ${version()}\n`);
      return 0;
    }
    const command = commands.find((c) => c.name === verb);
    if (!command) throw new UsageError(`unknown verb '${verb}': expected ${commands.map((c) => c.name).join(', ')}`);
    const { positionals, values } = parse(command, rest);
    if (values.help) {
      process.stdout.write(helpText(command) + '\n');
      return 0;
    }
    return await command.run(positionals, values);
  } catch (e) {
    // Messages name the user's paths and values: printed escaped, like a spec's diagnostics.
    if (e instanceof UsageError || e instanceof UnknownBackendError) {
      const where = e instanceof UsageError ? e.verb : verb;
      process.stderr.write(`qalc${where ? ` ${where}` : ''}: ${printable(e.message, { keepNewlines: true })}\n`);
      process.stderr.write(`run \`qalc${where ? ` ${where}` : ''} --help\` for usage\n`);
      return 1;
    }
    if (isInputError(e)) {
      process.stderr.write(`qalc${verb ? ` ${verb}` : ''}: ${printable(e.message, { keepNewlines: true })}\n`);
      return 1;
    }
    if (isSystemError(e)) {
      process.stderr.write(`qalc${verb ? ` ${verb}` : ''}: ${printable(describeSystemError(e), { keepNewlines: true })}\n`);
      return 1;
    }
    process.stderr.write(`qalc: internal error — this is a bug in qalc, not in your spec; please report it with the spec that caused it\n`);
    process.stderr.write(`${(e as Error)?.stack ?? String(e)}\n`);
    return 2;
  }
}
