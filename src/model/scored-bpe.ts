// run.c's tokenizer (llama2.c): SentencePiece BPE as a list of pieces with scores, encoded by
// merging, again and again, the adjacent pair whose concatenation is the highest-scoring piece.
// Both llama2.c's tokenizer.bin and a SentencePiece BPE .model are read into it.
//
// Pieces are kept as "binary" strings (one char per byte, latin1) so that concatenating two
// pieces is concatenating their bytes, exactly as run.c's sprintf("%s%s") does. A space is ' '
// (SentencePiece's '▁' is replaced when read, as llama2.c's export does).
import type { EncodeOptions, Tokenizer } from './tokenizer.ts';

export interface ScoredBpeVocabulary {
  /** Each piece as a binary string (one char per byte). */
  readonly pieces: readonly string[];
  readonly scores: Float32Array;
  readonly bos: number;
  readonly eos: number;
  readonly unk: number;
  /** Ids that encoding may produce from text by their piece (SentencePiece's normal and
   *  user-defined pieces); every id when absent, as run.c looks up every piece. */
  readonly matchable?: (id: number) => boolean;
  /** SentencePiece's remove_extra_whitespaces: leading, trailing and repeated spaces dropped. */
  readonly removeExtraWhitespaces?: boolean;
  /** SentencePiece's add_dummy_prefix: a space before the text (run.c always adds it). */
  readonly addDummyPrefix?: boolean;
  readonly fingerprint: Uint8Array;
}

export class ScoredBpeTokenizer implements Tokenizer {
  readonly pieces: readonly string[];
  readonly scores: Float32Array;
  readonly bos: number;
  readonly eos: number;
  readonly fingerprint: Uint8Array;
  private readonly unk: number;
  private readonly ids = new Map<string, number>();
  private readonly byteIds: Int32Array;
  private readonly removeExtraWhitespaces: boolean;
  private readonly addDummyPrefix: boolean;

  constructor(vocabulary: ScoredBpeVocabulary) {
    ({ pieces: this.pieces, scores: this.scores, bos: this.bos, eos: this.eos, unk: this.unk, fingerprint: this.fingerprint } = vocabulary);
    this.removeExtraWhitespaces = vocabulary.removeExtraWhitespaces ?? false;
    this.addDummyPrefix = vocabulary.addDummyPrefix ?? true;
    const matchable = vocabulary.matchable ?? (() => true);
    // run.c's bsearch over sorted pieces finds one of equal pieces; keep the first id.
    this.pieces.forEach((piece, id) => { if (matchable(id) && !this.ids.has(piece)) this.ids.set(piece, id); });
    // Byte fallback: byte b is the piece <0xBB> (ids 3 … 258 in LLaMA's vocabularies).
    const byId = new Map<string, number>();
    this.pieces.forEach((piece, id) => { if (!byId.has(piece)) byId.set(piece, id); });
    this.byteIds = Int32Array.from({ length: 256 }, (_, b) => byId.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`) ?? this.unk);
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
    if (options.bos ?? true) tokens.push(this.bos);
    if (this.removeExtraWhitespaces) text = text.replace(/ {2,}/g, ' ').replace(/^ | $/g, '');
    const bytes = new TextEncoder().encode(text);
    if (bytes.length > 0 && this.addDummyPrefix) {
      const dummyPrefix = this.lookup(' ');
      if (dummyPrefix < 0) throw new Error('tokenizer has no " " piece for the dummy prefix');
      tokens.push(dummyPrefix);
    }
    for (let start = 0; start < bytes.length;) {
      // A UTF-8 character: a lead byte and its continuation bytes, at most 4 bytes (as run.c).
      let end = start + 1;
      while (end < bytes.length && (bytes[end]! & 0xc0) === 0x80 && end - start < 4) end++;
      const char = bytes.subarray(start, end);
      const id = this.lookup(binary(char));
      if (id >= 0) tokens.push(id);
      else for (const b of char) tokens.push(this.byteIds[b]!);
      start = end;
    }
    for (;;) {
      let bestScore = -Infinity;
      let bestId = -1;
      let bestIndex = -1;
      for (let i = 0; i < tokens.length - 1; i++) {
        const id = this.lookup(this.pieces[tokens[i]!]! + this.pieces[tokens[i + 1]!]!);
        if (id >= 0 && this.scores[id]! > bestScore) {
          bestScore = this.scores[id]!;
          bestId = id;
          bestIndex = i;
        }
      }
      if (bestIndex < 0) break;
      tokens.splice(bestIndex, 2, bestId);
    }
    if (options.eos ?? false) tokens.push(this.eos);
    return tokens;
  }

  /** The bytes token `token` prints after `previous` (run.c's decode): the leading space of the
   *  first piece after BOS is dropped, and <0xXX> pieces become the raw byte. */
  pieceBytes(previous: number, token: number): Uint8Array {
    let piece = this.pieces[token];
    if (piece === undefined) throw new RangeError(`token ${token} is outside the vocabulary of ${this.vocabSize}`);
    if (previous === this.bos && piece.startsWith(' ')) piece = piece.slice(1);
    const byte = /^<0x([0-9A-Fa-f]{2})>/.exec(piece);
    if (byte) return Uint8Array.of(parseInt(byte[1]!, 16));
    return Uint8Array.from(piece, (c) => c.charCodeAt(0));
  }

  /** Decodes a token sequence as run.c prints it, each piece decoded after its predecessor
   *  (the first after `previous`, BOS by default), as UTF-8. BOS and EOS are not printed. */
  decode(tokens: readonly number[], previous = this.bos): string {
    const out: number[] = [];
    let prev = previous;
    for (const token of tokens) {
      if (token !== this.bos && token !== this.eos) out.push(...this.pieceBytes(prev, token));
      prev = token;
    }
    return new TextDecoder().decode(Uint8Array.from(out));
  }
}

export function binary(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}
