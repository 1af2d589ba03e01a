// Prints diagnostics the way compilers do:
//   spec.qal:12:7: error: group size 48 does not divide in_features 4096 of layers.0.down
//      12 |   group = 48
//         |           ^^
//   hint: …
import type { Diagnostic } from './diagnostic.ts';

export interface Palette {
  readonly error: (s: string) => string;
  readonly warning: (s: string) => string;
  readonly hint: (s: string) => string;
  readonly location: (s: string) => string;
  readonly caret: (s: string) => string;
}

export const PLAIN: Palette = { error: (s) => s, warning: (s) => s, hint: (s) => s, location: (s) => s, caret: (s) => s };

/** Lines of each source, split once however many diagnostics point into it. */
const linesCache = new WeakMap<object, Map<string, string[]>>();

function sourceLine(sources: ReadonlyMap<string, string>, file: string, line: number): string | undefined {
  let byFile = linesCache.get(sources);
  if (!byFile) linesCache.set(sources, (byFile = new Map()));
  let lines = byFile.get(file);
  if (!lines) {
    const text = sources.get(file);
    if (text === undefined) return undefined;
    byFile.set(file, (lines = text.split('\n')));
  }
  return lines[line - 1];
}

/** `sources` maps a file to its text, so the offending line can be shown. */
export function renderDiagnostic(d: Diagnostic, sources: ReadonlyMap<string, string>, palette: Palette = PLAIN): string {
  const { file, line, col, length } = d.span;
  const severity = d.severity === 'error' ? palette.error('error') : palette.warning('warning');
  const out = [`${palette.location(`${file}:${line}:${col}`)}: ${severity}: ${d.message}`];
  const text = sourceLine(sources, file, line);
  if (text !== undefined) {
    const shown = text.replace(/\t/g, ' ').replace(/\r$/, '');
    const gutter = String(line).length;
    const clipped = shown.length > 200 ? shown.slice(0, 200) + '…' : shown;
    const start = Math.min(col - 1, clipped.length);
    const carets = Math.max(1, Math.min(length, Math.max(1, clipped.length - start)));
    out.push(` ${String(line)} | ${clipped}`);
    out.push(` ${' '.repeat(gutter)} | ${' '.repeat(start)}${palette.caret('^'.repeat(carets))}`);
  }
  if (d.hint) out.push(`${palette.hint('hint')}: ${d.hint}`);
  return out.join('\n');
}

export function summarize(diagnostics: readonly Diagnostic[]): string {
  const errors = diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = diagnostics.length - errors;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  return `${plural(errors, 'error')}, ${plural(warnings, 'warning')}`;
}
