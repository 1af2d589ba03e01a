import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatSource } from '../../src/syntax/format.ts';
import { parseSource } from '../../src/syntax/parse.ts';

const examples = readdirSync('examples').filter((f) => f.endsWith('.qal')).map((f) => `examples/${f}`);

function format(text: string): string {
  const parsed = parseSource(text, 'f.qal');
  expect(parsed.diagnostics).toEqual([]);
  return formatSource(parsed.file);
}

describe('qalc fmt', () => {
  it.each(examples.filter((f) => !f.endsWith('broken.qal')))('%s is in canonical form, and format → parse → format is stable', (path) => {
    const text = readFileSync(path, 'utf8');
    const once = format(text);
    expect(once).toBe(text);
    expect(format(once)).toBe(once);
  });

  it('canonicalises spacing, lists and ranges, keeping every comment', () => {
    const messy = 'spec   a # name\n# lead\nquant{bits=4 group=32\n\n\n  # before close\n}\noverride layers 1..1,2..5 proj q,k {}\n# end';
    const expected = 'spec a  # name\n\n# lead\nquant {\n  bits = 4\n  group = 32\n  # before close\n}\n\noverride layers 1, 2..5 proj q, k {}\n\n# end\n';
    expect(format(messy)).toBe(expected);
    expect(format(expected)).toBe(expected);
  });

  it('preserves the meaning: the AST of the formatted file equals the original\'s', () => {
    const strip = (text: string) => JSON.stringify(parseSource(text, 'f.qal').file.statements, (k, v: unknown) => (k === 'span' || k.endsWith('Span') ? undefined : v));
    for (const path of examples.filter((f) => !f.endsWith('broken.qal'))) {
      const text = readFileSync(path, 'utf8').replace(/\n/g, '\n\n').replace(/ = /g, '=');
      expect(strip(format(text))).toBe(strip(text));
    }
  });
});
