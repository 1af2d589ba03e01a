// The token cache under $XDG_CACHE_HOME/qalc/tokens: an entry that is damaged or cut short is
// found out (its length and a hash of its contents), said, and rebuilt — never trusted.
import { readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachedTokens } from '../../src/train/token-cache.ts';

const cache = mkdtempSync(join(tmpdir(), 'qalc-cache-'));
const previous = process.env.XDG_CACHE_HOME;
beforeAll(() => { process.env.XDG_CACHE_HOME = cache; });
afterAll(() => { if (previous === undefined) delete process.env.XDG_CACHE_HOME; else process.env.XDG_CACHE_HOME = previous; });

const TOKENS = Int32Array.from({ length: 20_000 }, (_, i) => (i * 7919) % 512);
const TOKENIZER = Uint8Array.of(1, 2, 3);

/** Reads through the cache, saying how often it had to tokenize and what it told the user. */
function read(text: string) {
  let encoded = 0;
  const notices: string[] = [];
  const tokens = cachedTokens(text, TOKENIZER, () => { encoded++; return TOKENS.slice(); }, (m) => notices.push(m));
  return { tokens, encoded, notices };
}

const entry = () => join(cache, 'qalc', 'tokens', readdirSync(join(cache, 'qalc', 'tokens')).find((f) => !f.endsWith('.tmp'))!);

describe('the token cache', () => {
  it('tokenizes once, then reads the same tokens back', () => {
    expect(read('some text')).toMatchObject({ encoded: 1, notices: [] });
    const again = read('some text');
    expect(again).toMatchObject({ encoded: 0, notices: [] });
    expect(again.tokens).toEqual(TOKENS);
  });

  it('rebuilds an entry cut short, instead of training on what is left of it', () => {
    truncateSync(entry(), 9_500 * 4);
    const r = read('some text');
    expect(r.encoded).toBe(1);
    expect(r.tokens).toEqual(TOKENS);
    expect(r.notices).toEqual([expect.stringMatching(/^the token cache entry .+ is damaged \(\d+ bytes, expected \d+\): tokenizing again$/)]);
    expect(read('some text')).toMatchObject({ encoded: 0, notices: [] });
  });

  it('rebuilds an entry whose tokens were changed, found by its hash', () => {
    const bytes = readFileSync(entry());
    bytes[bytes.length - 3] ^= 0x40; // a token id far outside any vocabulary
    writeFileSync(entry(), bytes);
    const r = read('some text');
    expect(r.encoded).toBe(1);
    expect(r.tokens).toEqual(TOKENS);
    expect(r.notices).toEqual([expect.stringMatching(/^the token cache entry .+ is damaged \(its contents do not match their hash\): tokenizing again$/)]);
  });

  it('rebuilds an entry that is not one at all', () => {
    writeFileSync(entry(), 'garbage, but a multiple of four bytes!!!');
    const r = read('some text');
    expect(r.encoded).toBe(1);
    expect(r.notices).toEqual([expect.stringMatching(/is damaged \(not a qalc token cache entry\)/)]);
  });
});
