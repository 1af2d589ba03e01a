// Tokenizing a megabyte of text with run.c's merge loop takes seconds; a run (and a resumed
// run) reads the same file with the same tokenizer again and again. The token stream is kept
// under ~/.cache/qalc/tokens, named by a hash of the text and the tokenizer's bytes.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

function cacheDir(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'qalc', 'tokens');
}

export function cachedTokens(text: string, tokenizerBytes: Uint8Array, encode: () => Int32Array): Int32Array {
  const key = createHash('sha256').update(tokenizerBytes).update('\0').update(text).digest('hex');
  const path = join(cacheDir(), `${key}.i32`);
  if (existsSync(path)) {
    const bytes = readFileSync(path);
    if (bytes.byteLength % 4 === 0) return new Int32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  }
  const tokens = encode();
  try {
    mkdirSync(cacheDir(), { recursive: true });
    const temporary = `${path}.${process.pid}.tmp`;
    writeFileSync(temporary, new Uint8Array(tokens.buffer, tokens.byteOffset, tokens.byteLength));
    renameSync(temporary, path);
  } catch {
    // A read-only home is no reason to fail a run: it only costs the next one time.
  }
  return tokens;
}
