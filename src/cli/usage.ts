// Command-line arguments: node's own parseArgs, with errors a user can act on.
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A mistake on the command line (not in a spec): exit status 1 with the message. */
export class UsageError extends Error {
  constructor(message: string, readonly verb?: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  readonly options: NonNullable<ParseArgsConfig['options']>;
  /** Help for each option, by name. */
  readonly optionHelp: Readonly<Record<string, string>>;
  readonly run: (positionals: string[], values: Record<string, string | boolean | undefined>) => number | Promise<number>;
}

export function parse(command: Command, argv: string[]): { positionals: string[]; values: Record<string, string | boolean | undefined> } {
  try {
    const { positionals, values } = parseArgs({ args: argv, options: command.options, allowPositionals: true, strict: true });
    return { positionals, values: values as Record<string, string | boolean | undefined> };
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''), command.name);
  }
}

export function helpText(command: Command): string {
  const lines = [`usage: ${command.usage}`, '', command.summary];
  const names = Object.keys(command.options);
  if (names.length > 0) {
    lines.push('', 'options:');
    for (const name of names) {
      const option = command.options[name]!;
      const flag = `--${name}${option.type === 'string' ? ' VALUE' : ''}`;
      lines.push(`  ${flag.padEnd(20)} ${command.optionHelp[name] ?? ''}`);
    }
  }
  return lines.join('\n');
}
