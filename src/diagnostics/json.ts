// Diagnostics as data, for editors and CI (`qalc check --json`). Positions count from 1, columns
// in UTF-16 code units (what JavaScript, VS Code and the Language Server Protocol count); the end
// is just after the span. Messages and hints are the printed ones: user text in them is escaped.
import type { Diagnostic, Severity } from './diagnostic.ts';
import { printable } from './printable.ts';
import { limitDiagnostics } from './render.ts';

export interface DiagnosticJson {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly endLine: number;
  readonly endColumn: number;
  readonly severity: Severity;
  readonly message: string;
  readonly hint: string | null;
}

export function diagnosticJson(d: Diagnostic, sources: ReadonlyMap<string, string>): DiagnosticJson {
  const { file, line, col, offset, length } = d.span;
  const covered = sources.get(file)?.slice(offset, offset + length) ?? '';
  const lastBreak = covered.lastIndexOf('\n');
  const endLine = line + (covered.match(/\n/g)?.length ?? 0);
  const endColumn = lastBreak < 0 ? col + length : length - lastBreak;
  return { file, line, column: col, endLine, endColumn, severity: d.severity, message: printable(d.message), hint: d.hint === undefined ? null : printable(d.hint) };
}

export interface DiagnosticsDocument {
  readonly diagnostics: readonly DiagnosticJson[];
  /** Totals, including those left out. */
  readonly errors: number;
  readonly warnings: number;
  /** Left out by the limit (see limitDiagnostics). */
  readonly omitted: { readonly errors: number; readonly warnings: number };
}

/** One document for several specs; `limit` applies to each spec, as in the printed form. */
export function diagnosticsDocument(results: readonly { diagnostics: readonly Diagnostic[]; sources: ReadonlyMap<string, string> }[], limit: number): DiagnosticsDocument {
  const diagnostics: DiagnosticJson[] = [];
  let errors = 0;
  let warnings = 0;
  const omitted = { errors: 0, warnings: 0 };
  for (const result of results) {
    const limited = limitDiagnostics(result.diagnostics, limit);
    diagnostics.push(...limited.shown.map((d) => diagnosticJson(d, result.sources)));
    errors += result.diagnostics.filter((d) => d.severity === 'error').length;
    warnings += result.diagnostics.filter((d) => d.severity === 'warning').length;
    omitted.errors += limited.omittedErrors;
    omitted.warnings += limited.omittedWarnings;
  }
  return { diagnostics, errors, warnings, omitted };
}
