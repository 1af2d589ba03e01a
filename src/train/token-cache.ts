// Tokenizing a megabyte of text with run.c's merge loop takes seconds; a run (and a resumed
// run) reads the same file with the same tokenizer again and again. The token stream is kept
// under ~/.cache/qalc/tokens, named by a hash of the text and the tokenizer's bytes.
//
// An entry says how many tokens it holds and carries a hash of them, so one that was cut short
// (a full disk, a killed copy) or changed is found out, said, and rebuilt, never trained on:
//
//   "qalctok1"  8 bytes
//   count       u64 little-endian
//   sha256      32 bytes, of the token bytes
//   tokens      count × i32 little-endian
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../write-file.ts';

const MAGIC = Buffer.from('qalctok1', 'latin1');
const HEADER_BYTES = MAGIC.length + 8 + 32;

function cacheDir(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'qalc', 'tokens');
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest();

function encodeEntry(tokens: Int32Array): Uint8Array {
  const body = new Uint8Array(tokens.length * 4);
  const view = new DataView(body.buffer);
  tokens.forEach((t, i) => view.setInt32(4 * i, t, true));
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeBigUInt64LE(BigInt(tokens.length), MAGIC.length);
  sha256(body).copy(header, MAGIC.length + 8);
  return Buffer.concat([header, body]);
}

/** The tokens of an entry, or why it cannot be trusted. */
function decodeEntry(bytes: Buffer): Int32Array | string {
  if (bytes.length < HEADER_BYTES || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) return 'not a qalc token cache entry';
  const count = Number(bytes.readBigUInt64LE(MAGIC.length));
  const expected = HEADER_BYTES + 4 * count;
  if (bytes.length !== expected) return `${bytes.length} bytes, expected ${expected}`;
  const body = bytes.subarray(HEADER_BYTES);
  if (!sha256(body).equals(bytes.subarray(MAGIC.length + 8, HEADER_BYTES))) return 'its contents do not match their hash';
  const tokens = new Int32Array(count);
  for (let i = 0; i < count; i++) tokens[i] = body.readInt32LE(4 * i);
  return tokens;
}

export function cachedTokens(text: string, tokenizerBytes: Uint8Array, encode: () => Int32Array, notify: (message: string) => void = (m) => process.stderr.write(`${m}\n`)): Int32Array {
  const key = createHash('sha256').update(tokenizerBytes).update('\0').update(text).digest('hex');
  const path = join(cacheDir(), `${key}.tokens`);
  if (existsSync(path)) {
    const entry = decodeEntry(readFileSync(path));
    if (typeof entry !== 'string') return entry;
    notify(`the token cache entry ${path} is damaged (${entry}): tokenizing again`);
  }
  const tokens = encode();
  try {
    writeFileAtomic(path, encodeEntry(tokens));
  } catch {
    // A read-only home is no reason to fail a run: it only costs the next one time.
  }
  return tokens;
}
