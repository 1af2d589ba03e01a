// What a GGUF's `tokenizer.ggml.*` keys hold, whichever tokenizer it is built from (llama-vocab.ts).

/** llama.cpp's llama_token_type values (SentencePiece's piece types use the same numbers). */
export const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

export interface GgufVocabulary {
  readonly tokens: string[];
  readonly scores: number[];
  readonly tokenTypes: number[];
  readonly unk: number;
  readonly bos: number;
  readonly eos: number;
  /** tokenizer.ggml.pre, which convert_hf_to_gguf.py writes ("default" for SentencePiece vocabularies). */
  readonly pre?: string;
  /** tokenizer.ggml.add_bos_token / add_eos_token / add_space_prefix, where the converter writes them. */
  readonly addBos?: boolean;
  readonly addEos?: boolean;
  readonly addSpacePrefix?: boolean;
  /** Where the vocabulary came from, for the export's notice. */
  readonly source: string;
}

/** A checkpoint folder's tokenizer_config.json. */
export type TokenizerConfig = Readonly<Record<string, unknown>>;

