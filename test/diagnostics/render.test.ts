// What a user sees of a diagnostic: nothing in a spec may drive their terminal, and a file with
// thousands of mistakes prints a screenful and a count, as compilers do.
import { describe, expect, it } from 'vitest';
import { error, warning, type Diagnostic } from '../../src/diagnostics/diagnostic.ts';
import { limitDiagnostics, omittedLine, renderDiagnostic, summarize } from '../../src/diagnostics/render.ts';
import { compileInline } from '../support/inline-spec.ts';

const at = (col: number, length = 1) => ({ file: 't.qal', line: 1, col, offset: col - 1, length });

describe('rendering a diagnostic', () => {
  it('shows control characters and terminal escapes from the spec as escapes, carets still under them', () => {
    const r = compileInline({ 't.qal': 'spec t\nmodel { preset = "\x1b[31mred\x1b[0m\x07" }\nquant { bits = 4  group = 32 }\n' });
    const text = renderDiagnostic(r.diagnostics[0]!, r.sources);
    expect(text).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
    expect(text.split('\n').slice(0, 3)).toEqual([
      "t.qal:2:18: error: unknown preset '\\x1b[31mred\\x1b[0m\\x07'",
      ' 2 | model { preset = "\\x1b[31mred\\x1b[0m\\x07" }',
      '   |                  ^^^^^^^^^^^^^^^^^^^^^^^^',
    ]);
  });

  it('escapes C1 controls, bidirectional overrides and line separators too', () => {
    const sources = new Map([['t.qal', 'a\u009b2J\u202eb\u2028c\r']]);
    const text = renderDiagnostic(error(at(1), 'bad \u202e here'), sources);
    expect(text).toBe("t.qal:1:1: error: bad \\u{202e} here\n 1 | a\\x9b2J\\u{202e}b\\u{2028}c\n   | ^");
  });

  it('shows the part of a long line around the column, with the caret under it', () => {
    const line = Array.from({ length: 2000 }, (_, i) => String(i % 10)).join('');
    const text = renderDiagnostic(error(at(1500, 3), 'here'), new Map([['t.qal', line]]));
    const [, excerpt, carets] = text.split('\n');
    expect(excerpt!.length).toBeLessThan(220);
    const column = carets!.indexOf('^');
    expect(excerpt!.slice(column, column + 3)).toBe(line.slice(1499, 1502));
    expect(carets!.slice(column)).toBe('^^^');
  });
});

describe('many diagnostics', () => {
  const many = (n: number, make: (span: ReturnType<typeof at>, message: string) => Diagnostic) => Array.from({ length: n }, (_, i) => make(at(i + 1), `mistake ${i}`));

  it('keeps the first errors and the first warnings, in source order, and counts the rest', () => {
    const all = [...many(10_260, error), ...many(30, warning)].sort((a, b) => a.span.offset - b.span.offset);
    const limited = limitDiagnostics(all, 20);
    expect(limited.shown.filter((d) => d.severity === 'error')).toHaveLength(20);
    expect(limited.shown.filter((d) => d.severity === 'warning')).toHaveLength(20);
    expect(limited.shown.map((d) => d.span.offset)).toEqual([...limited.shown.map((d) => d.span.offset)].sort((a, b) => a - b));
    expect(limited).toMatchObject({ omittedErrors: 10_240, omittedWarnings: 10 });
    expect(omittedLine(limited)).toBe('… and 10,240 more errors and 10 more warnings, not shown (`qalc check --max-errors 0` shows them all)');
    expect(summarize(all)).toBe('10,260 errors, 30 warnings');
  });

  it('shows everything with no limit, and says nothing was left out', () => {
    const limited = limitDiagnostics(many(50, error), 0);
    expect(limited.shown).toHaveLength(50);
    expect(omittedLine(limited)).toBeUndefined();
  });
});
