// Prints diagnostics the way compilers do:
//   spec.qal:12:7: error: group size 48 does not divide in_features 4096 of layers.0.down
//      12 |   group = 48
//         |           ^^
//   hint: …
// Everything taken from the user's files is printed through `printable`. A file with thousands
// of mistakes prints the first few and a count (`limitDiagnostics`), as compilers do.
import type { Diagnostic } from './diagnostic.ts';
import { printable } from './printable.ts';

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

/** The widest excerpt shown, and how much of it may come before the caret on a long line. */
const EXCERPT_WIDTH = 200;
const EXCERPT_LEAD = 60;

const shown = (text: string) => printable(text.replace(/\t/g, ' '));

/** The source line as printed, and where in it the carets go. */
function excerpt(text: string, col: number, length: number): { line: string; start: number; carets: number } {
  const raw = text.replace(/\r$/, '');
  const from = Math.min(col - 1, raw.length);
  let before = shown(raw.slice(0, from));
  const marked = shown(raw.slice(from, from + Math.max(1, length)));
  let after = shown(raw.slice(from + Math.max(1, length)));
  if (before.length > EXCERPT_WIDTH - EXCERPT_LEAD) before = '…' + before.slice(before.length - EXCERPT_LEAD + 1);
  const room = EXCERPT_WIDTH - before.length;
  const mark = marked.length > room ? marked.slice(0, room) : marked;
  if (mark.length + after.length > room) after = after.slice(0, Math.max(0, room - mark.length)) + '…';
  return { line: before + mark + after, start: before.length, carets: Math.max(1, mark.length) };
}

/** `sources` maps a file to its text, so the offending line can be shown. */
export function renderDiagnostic(d: Diagnostic, sources: ReadonlyMap<string, string>, palette: Palette = PLAIN): string {
  const { file, line, col, length } = d.span;
  const severity = d.severity === 'error' ? palette.error('error') : palette.warning('warning');
  const out = [`${palette.location(`${printable(file)}:${line}:${col}`)}: ${severity}: ${printable(d.message)}`];
  const text = sourceLine(sources, file, line);
  if (text !== undefined) {
    const shownLine = excerpt(text, col, length);
    const gutter = String(line).length;
    out.push(` ${String(line)} | ${shownLine.line}`);
    out.push(` ${' '.repeat(gutter)} | ${' '.repeat(shownLine.start)}${palette.caret('^'.repeat(shownLine.carets))}`);
  }
  if (d.hint) out.push(`${palette.hint('hint')}: ${printable(d.hint)}`);
  return out.join('\n');
}

const count = (n: number, word: string) => `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`;

export function summarize(diagnostics: readonly Diagnostic[]): string {
  const errors = diagnostics.filter((d) => d.severity === 'error').length;
  return `${count(errors, 'error')}, ${count(diagnostics.length - errors, 'warning')}`;
}

/** How many errors and how many warnings are shown at most, unless told otherwise (clang's -ferror-limit). */
export const DEFAULT_DIAGNOSTIC_LIMIT = 20;

export interface LimitedDiagnostics {
  /** The first `limit` errors and the first `limit` warnings, in the order given. */
  readonly shown: readonly Diagnostic[];
  readonly omittedErrors: number;
  readonly omittedWarnings: number;
}

/** `limit` 0 keeps everything. */
export function limitDiagnostics(diagnostics: readonly Diagnostic[], limit: number): LimitedDiagnostics {
  if (limit === 0) return { shown: diagnostics, omittedErrors: 0, omittedWarnings: 0 };
  const kept = { error: 0, warning: 0 };
  const shown = diagnostics.filter((d) => ++kept[d.severity] <= limit);
  return { shown, omittedErrors: Math.max(0, kept.error - limit), omittedWarnings: Math.max(0, kept.warning - limit) };
}

/** "… and 10,240 more errors, not shown (…)", or nothing when nothing was left out. */
export function omittedLine(limited: LimitedDiagnostics): string | undefined {
  const parts = [
    ...(limited.omittedErrors > 0 ? [count(limited.omittedErrors, 'more error')] : []),
    ...(limited.omittedWarnings > 0 ? [count(limited.omittedWarnings, 'more warning')] : []),
  ];
  if (parts.length === 0) return undefined;
  return `… and ${parts.join(' and ')}, not shown (\`qalc check --max-errors 0\` shows them all)`;
}
