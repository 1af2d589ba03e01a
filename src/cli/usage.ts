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
  /**
   * Boolean options that may take a value, by name with the value's placeholder: `--html` alone
   * or `--html page.html`. parseArgs has no optional values, so the word right after the flag,
   * when it is not an option, becomes the value.
   */
  readonly optionalValues?: Readonly<Record<string, string>>;
  readonly run: (positionals: string[], values: Record<string, string | boolean | undefined>) => number | Promise<number>;
}

export function parse(command: Command, argv: string[]): { positionals: string[]; values: Record<string, string | boolean | undefined> } {
  try {
    const { positionals, values, tokens } = parseArgs({ args: argv, options: command.options, allowPositionals: true, strict: true, tokens: true });
    const parsed = values as Record<string, string | boolean | undefined>;
    const taken = new Set<number>();
    for (const [i, token] of tokens.entries()) {
      const next = tokens[i + 1];
      if (token.kind !== 'option' || !command.optionalValues?.[token.name] || token.inlineValue) continue;
      if (next?.kind === 'positional' && next.index === token.index + 1) {
        parsed[token.name] = next.value;
        taken.add(next.index);
      }
    }
    const rest = tokens.filter((t) => t.kind === 'positional' && !taken.has(t.index)).map((t) => (t as { value: string }).value);
    return { positionals: rest, values: parsed };
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
      const optional = command.optionalValues?.[name];
      const flag = `--${name}${option.type === 'string' ? ' VALUE' : optional ? ` [${optional}]` : ''}`;
      lines.push(`  ${flag.padEnd(20)} ${command.optionHelp[name] ?? ''}`);
    }
  }
  return lines.join('\n');
}
