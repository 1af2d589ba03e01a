// What the trainer and the generator need of a tokenizer, whatever file it came from: text to
// ids with or without BOS / EOS, ids back to text, and the size of the vocabulary it indexes.
// The readers are in read-tokenizer.ts: llama2.c's tokenizer.bin, a SentencePiece .model (both
// through run.c's encoder, scored-bpe.ts) and a Hugging Face tokenizer.json (hf-tokenizer.ts).

export class TokenizerError extends Error {
  constructor(readonly path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = 'TokenizerError';
  }
}

export interface EncodeOptions {
  /** Prepend BOS; run.c does for the prompt. Default true. */
  readonly bos?: boolean;
  /** Append EOS. Default false. */
  readonly eos?: boolean;
}

export interface Tokenizer {
  /** Ids run 0 … vocabSize − 1; it must be the model's vocabulary size. */
  readonly vocabSize: number;
  /** Begin and end of sequence: 1 and 2 for LLaMA's SentencePiece vocabularies. */
  readonly bos: number;
  readonly eos: number;
  /** What a token cache is keyed by: the bytes of the files read, and the reader. */
  readonly fingerprint: Uint8Array;
  encode(text: string, options?: EncodeOptions): number[];
  /** The text of `tokens` as the start of a text (after BOS: the dummy-prefix space dropped);
   *  control tokens are not printed. */
  decode(tokens: readonly number[]): string;
}
