// Prints a front end's diagnostics to stderr and says how the command should exit.
import type { FrontEndResult } from '../compile.ts';
import { hasErrors } from '../diagnostics/diagnostic.ts';
import { DEFAULT_DIAGNOSTIC_LIMIT, limitDiagnostics, omittedLine, renderDiagnostic, summarize } from '../diagnostics/render.ts';
import { paletteFor } from './terminal.ts';

/**
 * 0 when the spec has no errors (warnings are printed but pass), 1 otherwise. At most `limit`
 * errors and `limit` warnings are printed (0: all); the rest are counted.
 */
export function reportDiagnostics(result: Pick<FrontEndResult, 'diagnostics' | 'sources'>, limit = DEFAULT_DIAGNOSTIC_LIMIT): number {
  const palette = paletteFor(process.stderr);
  const limited = limitDiagnostics(result.diagnostics, limit);
  for (const d of limited.shown) process.stderr.write(renderDiagnostic(d, result.sources, palette) + '\n');
  const omitted = omittedLine(limited);
  if (omitted) process.stderr.write(omitted + '\n');
  if (result.diagnostics.length > 0) process.stderr.write(summarize(result.diagnostics) + '\n');
  return hasErrors(result.diagnostics) ? 1 : 0;
}
