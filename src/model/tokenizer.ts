// llama2.c's tokenizer (tokenizer.bin / tok512.bin) and its encode/decode rules from run.c.
//
// File: int32 max_token_length, then for each of the vocab_size tokens: float32 score,
// int32 byte length, the piece's bytes (no terminator). vocab_size is not stored; it is the
// model's. Ids 0, 1, 2 are <unk>, <s> (BOS), </s> (EOS); ids 3..258 are the byte-fallback
// pieces <0x00>..<0xFF>, so byte b is token b + 3.
//
// Pieces are kept as "binary" strings (one char per byte, latin1) so that concatenating two
// pieces is concatenating their bytes, exactly as run.c's sprintf("%s%s") does.
import { readFileSync } from 'node:fs';
import { systemErrorReason } from '../system-error.ts';

export const UNK = 0;
export const BOS = 1;
export const EOS = 2;
const BYTE_FALLBACK_OFFSET = 3;

export class TokenizerError extends Error {
  constructor(readonly path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = 'TokenizerError';
  }
}

export interface EncodeOptions {
  /** Prepend BOS (token 1); run.c does for the prompt. Default true. */
  readonly bos?: boolean;
  /** Append EOS (token 2). Default false. */
  readonly eos?: boolean;
}

export class Tokenizer {
  private readonly ids = new Map<string, number>();
  private readonly dummyPrefix: number;

  constructor(
    /** Each piece as a binary string (one char per byte). */
    readonly pieces: readonly string[],
    readonly scores: Float32Array,
    readonly maxTokenLength: number,
  ) {
    // run.c's bsearch over sorted pieces finds one of equal pieces; keep the first id.
    pieces.forEach((piece, id) => { if (!this.ids.has(piece)) this.ids.set(piece, id); });
    this.dummyPrefix = this.ids.get(' ') ?? -1;
  }

  get vocabSize(): number {
    return this.pieces.length;
  }

  /** The id of a piece given as a binary string, or -1 (run.c's str_lookup). */
  lookup(piece: string): number {
    return this.ids.get(piece) ?? -1;
  }

  /** run.c's encode: dummy-prefix space, one token per UTF-8 character (or byte fallback), then
   *  repeatedly merge the adjacent pair whose concatenation is the highest-scoring piece. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const tokens: number[] = [];
    if (options.bos ?? true) tokens.push(BOS);
    const bytes = new TextEncoder().encode(text);
    if (bytes.length > 0) {
      if (this.dummyPrefix < 0) throw new Error('tokenizer has no " " piece for the dummy prefix');
      tokens.push(this.dummyPrefix);
    }
    for (let start = 0; start < bytes.length;) {
      // A UTF-8 character: a lead byte and its continuation bytes, at most 4 bytes (as run.c).
      let end = start + 1;
      while (end < bytes.length && (bytes[end] & 0xc0) === 0x80 && end - start < 4) end++;
      const char = bytes.subarray(start, end);
      const id = this.lookup(binary(char));
      if (id >= 0) tokens.push(id);
      else for (const b of char) tokens.push(b + BYTE_FALLBACK_OFFSET);
      start = end;
    }
    for (;;) {
      let bestScore = -1e10;
      let bestId = -1;
      let bestIndex = -1;
      for (let i = 0; i < tokens.length - 1; i++) {
        const id = this.lookup(this.pieces[tokens[i]] + this.pieces[tokens[i + 1]]);
        if (id >= 0 && this.scores[id] > bestScore) {
          bestScore = this.scores[id];
          bestId = id;
          bestIndex = i;
        }
      }
      if (bestIndex < 0) break;
      tokens.splice(bestIndex, 2, bestId);
    }
    if (options.eos ?? false) tokens.push(EOS);
    return tokens;
  }

  /** The bytes token `token` prints after `previous` (run.c's decode): the leading space of the
   *  first piece after BOS is dropped, and <0xXX> pieces become the raw byte. */
  pieceBytes(previous: number, token: number): Uint8Array {
    let piece = this.pieces[token];
    if (piece === undefined) throw new RangeError(`token ${token} is outside the vocabulary of ${this.vocabSize}`);
    if (previous === BOS && piece.startsWith(' ')) piece = piece.slice(1);
    const byte = /^<0x([0-9A-Fa-f]{2})>/.exec(piece);
    if (byte) return Uint8Array.of(parseInt(byte[1], 16));
    return Uint8Array.from(piece, (c) => c.charCodeAt(0));
  }

  /** Decodes a token sequence as run.c prints it, each piece decoded after its predecessor
   *  (the first after `previous`, BOS by default), as UTF-8. Control tokens are not printed. */
  decode(tokens: readonly number[], previous = BOS): string {
    const out: number[] = [];
    let prev = previous;
    for (const token of tokens) {
      if (token !== BOS && token !== EOS) out.push(...this.pieceBytes(prev, token));
      prev = token;
    }
    return new TextDecoder().decode(Uint8Array.from(out));
  }
}

function binary(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

export function readTokenizer(path: string, vocabSize: number): Tokenizer {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new TokenizerError(path, `cannot read the tokenizer: ${systemErrorReason(e)}`);
  }
  return parseTokenizer(bytes, vocabSize, path);
}

/** Parses tokenizer bytes for a model of `vocabSize` tokens; `path` only names the file in errors. */
export function parseTokenizer(bytes: Uint8Array, vocabSize: number, path: string): Tokenizer {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (offset: number, n: number, what: string) => {
    if (offset + n > bytes.byteLength) {
      throw new TokenizerError(path, `the file ends in ${what} (byte ${offset}, file is ${bytes.byteLength} bytes): ` +
        `does it hold the model's vocabulary of ${vocabSize} tokens?`);
    }
  };
  need(0, 4, 'max_token_length');
  const maxTokenLength = view.getInt32(0, true);
  const pieces: string[] = [];
  const scores = new Float32Array(vocabSize);
  let offset = 4;
  for (let id = 0; id < vocabSize; id++) {
    need(offset, 8, `the header of token ${id}`);
    scores[id] = view.getFloat32(offset, true);
    const length = view.getInt32(offset + 4, true);
    offset += 8;
    if (length < 0 || length > maxTokenLength) {
      throw new TokenizerError(path, `token ${id} has length ${length}, max_token_length is ${maxTokenLength}`);
    }
    need(offset, length, `the bytes of token ${id}`);
    pieces.push(binary(bytes.subarray(offset, offset + length)));
    offset += length;
  }
  if (offset !== bytes.byteLength) {
    throw new TokenizerError(path, `vocabulary size mismatch: the model has ${vocabSize} tokens but the file has ` +
      `${bytes.byteLength - offset} bytes left after token ${vocabSize - 1}`);
  }
  return new Tokenizer(pieces, scores, maxTokenLength);
}
