import { UsageError, type Command } from '../usage.ts';

const STAGES = ['tokens', 'ast', 'checked', 'plan'] as const;

/** JSON that can hold the checker's Maps. */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (v instanceof Map ? Object.fromEntries(v) : v), 2) + '\n';
}

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'Show what the compiler made of a spec after a stage. The plan (default) is a table of every linear layer with its size in MiB; --json prints it as JSON.',
  usage: `qalc inspect SPEC [--stage ${STAGES.join('|')}] [--json] [--all]`,
  options: {
    stage: { type: 'string', default: 'plan' },
    json: { type: 'boolean' },
    all: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
  optionHelp: {
    stage: `the stage to show: ${STAGES.join(', ')}`,
    json: 'print the plan as JSON instead of a table',
    all: 'one table row per layer instead of grouping identical ones',
    help: 'show this help',
  },
  async run(positionals, values) {
    // Loaded on demand, so `qalc --help` and the other verbs don't pay for this one's stages.
    const { frontEnd } = await import('../../compile.ts');
    const { qalLexer } = await import('../../../grammars/qal/tokens.ts');
    const { renderPlanTable } = await import('../plan-table.ts');
    const { reportDiagnostics } = await import('../report.ts');
    if (positionals.length !== 1) throw new UsageError('inspect takes exactly one spec file', 'inspect');
    const stage = values.stage as string;
    if (!(STAGES as readonly string[]).includes(stage)) throw new UsageError(`unknown stage '${stage}': expected ${STAGES.join(', ')}`, 'inspect');
    const result = frontEnd(positionals[0]!);
    const status = reportDiagnostics(result);
    switch (stage) {
      case 'tokens': {
        const file = result.loaded.files[0];
        if (!file) return status;
        const tokens = qalLexer.tokenize(file.text).tokens.map((t) => `${t.startLine}:${t.startColumn} ${t.tokenType.name} ${JSON.stringify(t.image)}`);
        process.stdout.write(tokens.join('\n') + '\n');
        return status;
      }
      case 'ast':
        process.stdout.write(toJson(result.loaded.statements));
        return status;
      case 'checked':
        if (result.checked) process.stdout.write(toJson(result.checked));
        return status;
      default:
        if (!result.plan) return status;
        process.stdout.write(values.json ? toJson(result.plan) : renderPlanTable(result.plan, values.all === true));
        return status;
    }
  },
};
