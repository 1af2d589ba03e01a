// What the runtime verbs (train, eval, merge, generate) share: a spec that must compile cleanly,
// the run folder it trains into, and which failures are the user's input rather than qalc's bugs.
import { dirname, join } from 'node:path';
import type { Plan } from '../plan/plan.ts';
import { UsageError } from './usage.ts';

/** Errors about the user's files or data: printed as one line, exit status 1. */
const INPUT_ERRORS = new Set(['CheckpointError', 'TokenizerError', 'SafetensorsError', 'TrainingError', 'DataError', 'UnsupportedPlanError', 'GenerationError']);

export function isInputError(e: unknown): e is Error {
  return e instanceof Error && INPUT_ERRORS.has(e.name);
}

/** The spec's plan, or the spec's diagnostics printed and exit status 1. */
export async function planOf(specPath: string, verb: string): Promise<{ plan: Plan; specDir: string } | number> {
  if (!specPath.endsWith('.qal')) throw new UsageError(`expected a .qal spec, not '${specPath}'`, verb);
  const { frontEnd } = await import('../compile.ts');
  const { reportDiagnostics } = await import('./report.ts');
  const result = frontEnd(specPath);
  const status = reportDiagnostics(result);
  if (!result.plan) return status || 1;
  return { plan: result.plan, specDir: dirname(specPath) };
}

/** Where `qalc train` writes a spec's run unless told otherwise (git-ignored). */
export function defaultRunDir(plan: Plan): string {
  return join('generated', plan.spec, 'run');
}
