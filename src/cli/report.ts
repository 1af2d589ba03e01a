// Prints a front end's diagnostics to stderr and says how the command should exit.
import type { FrontEndResult } from '../compile.ts';
import { hasErrors } from '../diagnostics/diagnostic.ts';
import { renderDiagnostic, summarize } from '../diagnostics/render.ts';
import { paletteFor } from './terminal.ts';

/** 0 when the spec has no errors (warnings are printed but pass), 1 otherwise. */
export function reportDiagnostics(result: Pick<FrontEndResult, 'diagnostics' | 'sources'>, quietWhenClean = true): number {
  const palette = paletteFor(process.stderr);
  for (const d of result.diagnostics) process.stderr.write(renderDiagnostic(d, result.sources, palette) + '\n');
  if (result.diagnostics.length > 0 || !quietWhenClean) process.stderr.write(summarize(result.diagnostics) + '\n');
  return hasErrors(result.diagnostics) ? 1 : 0;
}
