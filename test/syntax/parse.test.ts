import { describe, expect, it } from 'vitest';
import { parseSource } from '../../src/syntax/parse.ts';

function parse(text: string) {
  return parseSource(text, 'p.qal');
}

function errorLines(text: string): string[] {
  return parse(text).diagnostics.map((d) => `${d.span.line}:${d.span.col}: ${d.message}${d.hint ? ` [${d.hint}]` : ''}`);
}

describe('the parser', () => {
  it('builds the AST of every statement kind, with spans', () => {
    const { file, diagnostics } = parse([
      'spec demo  # a comment',
      'include "base.qal"',
      'quant { bits = 4  group = 32  damp = 0.01 }',
      'target cuda { arch = [sm_80, sm_90a] }',
      'override layers 0, 3..5, all proj q, down { bits = 8  lr = -2e-5 }',
    ].join('\n'));
    expect(diagnostics).toEqual([]);
    expect(file.statements.map((s) => s.kind)).toEqual(['spec', 'include', 'block', 'target', 'override']);
    const override = file.statements[4]!;
    if (override.kind !== 'override') throw new Error('not an override');
    expect(override.selectors).toMatchObject([
      { kind: 'layers', items: [{ kind: 'range', first: 0, last: 0 }, { kind: 'range', first: 3, last: 5 }, { kind: 'all' }] },
      { kind: 'proj', names: [{ name: 'q' }, { name: 'down' }] },
    ]);
    expect(override.body.settings.map((s) => [s.key, s.value.kind === 'list' ? 'list' : s.value.value])).toEqual([['bits', 8], ['lr', -2e-5]]);
    expect(override.body.settings[1]!.keySpan).toMatchObject({ line: 5, col: 55 });
    expect(file.comments.map((c) => c.text)).toEqual(['# a comment']);
  });

  it('reports every syntax error in a file, one per broken line', () => {
    expect(errorLines([
      'spec x',
      'quant { bits 4 }',
      'adapter { rank = }',
      'model { preset = llama2_7b',
      'train { lr = 1e-3 }',
      'target cuda { arch = [sm_80 sm_90a] }',
      'bogus',
    ].join('\n'))).toEqual([
      "2:14: expected '=' but found '4' [settings are written `key = value`, one or more per block]",
      "3:18: expected a value but found '}'",
      "4:7: missing '}' to close the block opened here [the block ends before 'train' on line 5]",
      "6:29: expected ']' but found 'sm_90a' [list items are separated by commas: [a, b]]",
      "7:1: expected a statement (spec, include, model, quant, adapter, train, export, target, override) but found 'bogus' [a file is a list of statements such as `quant { bits = 4 }`]",
    ]);
  });

  it('keeps the statements around a broken one', () => {
    const { file } = parse('spec x\nquant { bits = = 4 }\nadapter { rank = 8 }');
    expect(file.statements.map((s) => s.kind)).toEqual(['spec', 'block', 'block']);
  });

  it('skips a UTF-8 byte order mark at the start, as editors on Windows write it', () => {
    const { file, diagnostics } = parse('\uFEFFspec x\nquant { bits = 4 }');
    expect(diagnostics).toEqual([]);
    expect(file.statements.map((s) => s.kind)).toEqual(['spec', 'block']);
    expect(file.statements[0]!.span).toMatchObject({ line: 1, col: 1, offset: 0 });
    expect(errorLines('spec x\n\uFEFFquant { bits = 4 }')[0]).toMatch(/^2:1: unexpected character/); // only at the start
  });

  it('reports characters that are not part of the language', () => {
    expect(errorLines('spec x\nquant { bits = 4; group = 32 }')).toEqual(["2:17: unexpected character ';' [settings need no separator: one per line]"]);
    expect(errorLines('spec x // comment')).toEqual(["1:8: comments start with '#', not '//' [write # comment]"]);
    expect(errorLines('spec x\nquant { bits: 4 }')[0]).toBe("2:13: unexpected character ':' [settings are written `key = value`]");
    expect(errorLines('model { checkpoint = "unterminated\n}')[0]).toMatch(/^1:22: unexpected character .* \[strings end on the line they start/);
  });

  it('restricts names at the lexer, so nothing a user writes becomes generated code', () => {
    // A name is [A-Za-z_][A-Za-z0-9_]*: quotes, backticks, braces and non-ASCII never join one.
    for (const hostile of ['spec a"; process.exit(1); "', 'spec a`${x}`', 'spec a{}', 'spec naïve', 'spec a/*x*/']) {
      const { diagnostics, file } = parse(hostile);
      expect(diagnostics.length, hostile).toBeGreaterThan(0);
      const spec = file.statements.find((s) => s.kind === 'spec');
      if (spec?.kind === 'spec') expect(spec.name).toMatch(/^[A-Za-z_][A-Za-z0-9_]*$/);
    }
    expect(errorLines('spec llama2-7b')).toEqual(["1:6: expected a name but found 'llama2-7b' [names are letters, digits and '_': write llama2_7b]"]);
  });

  it('keeps strings as data: escapes are undone, nothing is interpreted', () => {
    const { file } = parse('model { checkpoint = "a \\"quoted\\" ${path}\\\\x" }');
    const setting = file.statements[0]!.kind === 'block' ? file.statements[0]!.body.settings[0]! : undefined;
    expect(setting?.value).toMatchObject({ kind: 'string', value: 'a "quoted" ${path}\\x' });
  });
});
