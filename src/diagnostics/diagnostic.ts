// Errors are values with a location until the CLI prints them.

/** A place in a source file; lines and columns count from 1, `length` is in characters. */
export interface SourceSpan {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly offset: number;
  readonly length: number;
}

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  readonly severity: Severity;
  readonly span: SourceSpan;
  readonly message: string;
  /** A suggestion for the fix: "did you mean 'gate'?", "use group = 43 for this layer". */
  readonly hint?: string;
}

export function error(span: SourceSpan, message: string, hint?: string): Diagnostic {
  return hint === undefined ? { severity: 'error', span, message } : { severity: 'error', span, message, hint };
}

export function warning(span: SourceSpan, message: string, hint?: string): Diagnostic {
  return hint === undefined ? { severity: 'warning', span, message } : { severity: 'warning', span, message, hint };
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error');
}

/** Source order: file, then position; errors and warnings interleaved as they appear. */
export function sortDiagnostics(diagnostics: readonly Diagnostic[]): Diagnostic[] {
  return [...diagnostics].sort((a, b) =>
    a.span.file === b.span.file ? a.span.offset - b.span.offset : a.span.file < b.span.file ? -1 : 1);
}

/** A span for a whole file when there is no better place (a file that cannot be read). */
export function fileSpan(file: string): SourceSpan {
  return { file, line: 1, col: 1, offset: 0, length: 0 };
}
