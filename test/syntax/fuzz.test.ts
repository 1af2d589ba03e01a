// Mutates the examples — tokens dropped, duplicated, swapped and corrupted, random bytes,
// truncation, very long inputs — and runs the whole front end on each. A user's mistake must
// never crash or hang qalc, and every diagnostic must point at a line and column of the file.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { qalLexer } from '../../grammars/qal/tokens.ts';
import { frontEnd } from '../../src/compile.ts';
import { renderDiagnostic } from '../../src/diagnostics/render.ts';
import { createRng, type Rng } from '../../src/reference/random.ts';

const CASES = Number(process.env.QALC_FUZZ_CASES ?? 10_000);
const SLOWEST_CASE_MS = 2_000;

const examples = readdirSync('examples').filter((f) => f.endsWith('.qal')).map((f) => ({ path: `examples/${f}`, text: readFileSync(`examples/${f}`, 'utf8') }));
const pool = [...new Set(examples.flatMap((e) => qalLexer.tokenize(e.text).tokens.map((t) => t.image)))];
const NASTY = ['"', '\\', '{', '}', '[', ']', '..', '=', ',', '-', '\0', '\u00e9', '\u{1F600}', '\r\n', '\t', '/*', '//', '#', '`', '$', '99999999999999999999999', '1e999', '-0', '0..', '...'];

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(items.length)]!;
}

function randomBytes(rng: Rng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(rng.int(rng.next() < 0.9 ? 128 : 0xffff));
  return s;
}

/** One mutation of one example, chosen by the seed. */
function mutate(rng: Rng, text: string): string {
  const tokens = qalLexer.tokenize(text).tokens;
  if (tokens.length === 0) return text + randomBytes(rng, 8);
  const t = pick(rng, tokens);
  const start = t.startOffset;
  const end = t.endOffset! + 1;
  switch (rng.int(9)) {
    case 0: return text.slice(0, start) + text.slice(end); // drop
    case 1: return text.slice(0, end) + ' ' + t.image + text.slice(end); // duplicate
    case 2: { // swap with another token
      const u = pick(rng, tokens);
      if (u.startOffset <= end) return text;
      return text.slice(0, start) + u.image + text.slice(end, u.startOffset) + t.image + text.slice(u.endOffset! + 1);
    }
    case 3: return text.slice(0, start) + pick(rng, pool) + text.slice(end); // replace by another word
    case 4: return text.slice(0, start) + pick(rng, NASTY) + text.slice(end); // corrupt
    case 5: { const at = rng.int(text.length + 1); return text.slice(0, at) + randomBytes(rng, 1 + rng.int(12)) + text.slice(at); }
    case 6: return text.slice(0, rng.int(text.length + 1)); // truncate
    case 7: { // several mutations at once
      let s = text;
      for (let i = 0; i < 2 + rng.int(4); i++) s = mutate(rng, s);
      return s;
    }
    default: return randomBytes(rng, rng.int(200));
  }
}

const LONG_INPUTS: Array<[string, string]> = [
  ['a 100,000-character name', `spec ${'a'.repeat(100_000)}\n`],
  ['a 100,000-character string', `spec s\nmodel { checkpoint = "${'x'.repeat(100_000)}" }\n`],
  ['10,000 nested brackets', `spec s\nquant { bits = ${'['.repeat(10_000)} }\n`],
  ['20,000 settings', `spec s\nmodel { preset = llama_7b }\nquant {\n${'  bits = 4\n'.repeat(20_000)}}\n`],
  ['5,000 overrides', `spec s\nmodel { preset = llama_7b }\nquant { bits = 4  group = 32 }\n${Array.from({ length: 5_000 }, (_, i) => `override layers ${i % 40} proj q { bits = ${[2, 3, 4, 8][i % 4]} }`).join('\n')}\n`],
  ['an example repeated 200 times', examples[0]!.text.repeat(200)],
  ['a huge layer range', 'spec s\nmodel { preset = llama_7b }\nquant { bits = 4  group = 32 }\noverride layers 0..999999999 { bits = 2 }\n'],
  ['a megabyte of random bytes', randomBytes(createRng(7), 1_000_000)],
];

/** Runs the front end on one input; returns how long it took and whether it found errors. */
function checkCase(name: string, text: string): { ms: number; errors: boolean } {
  const started = performance.now();
  const result = frontEnd(name, () => text);
  const lines = text.split('\n').length;
  for (const d of result.diagnostics) {
    expect(d.message.length, name).toBeGreaterThan(0);
    expect(d.span.line, `${name}: ${d.message}`).toBeGreaterThanOrEqual(1);
    expect(d.span.col, `${name}: ${d.message}`).toBeGreaterThanOrEqual(1);
    if (d.span.file === name) expect(d.span.line, `${name}: ${d.message}`).toBeLessThanOrEqual(lines + 1);
    renderDiagnostic(d, result.sources);
  }
  return { ms: performance.now() - started, errors: result.diagnostics.some((d) => d.severity === 'error') };
}

describe('fuzzing the front end', () => {
  it(`survives ${CASES.toLocaleString('en-US')} mutated examples without a crash, a hang or a diagnostic without a position`, () => {
    const rng = createRng(20261128);
    let slowest = 0;
    let withErrors = 0;
    for (let i = 0; i < CASES; i++) {
      const example = examples[i % examples.length]!;
      const text = mutate(rng, example.text);
      // Keep the path: examples read their checkpoint relative to it.
      const { ms, errors } = checkCase(example.path, text);
      slowest = Math.max(slowest, ms);
      if (errors) withErrors++;
    }
    expect(slowest).toBeLessThan(SLOWEST_CASE_MS);
    // The mutations must actually break specs, or this test proves nothing.
    expect(withErrors).toBeGreaterThan(CASES / 2);
    console.log(`fuzz: ${CASES} cases, ${withErrors} with errors, slowest ${slowest.toFixed(1)} ms`);
  }, 600_000);

  it.each(LONG_INPUTS)('handles %s', (_name, text) => {
    expect(checkCase('long.qal', text).ms).toBeLessThan(10_000);
  });
});
