// A SentencePiece model as GGUF's `tokenizer.ggml.*` arrays, as llama.cpp's convert_hf_to_gguf.py
// (`_create_vocab_sentencepiece`, `_set_vocab_sentencepiece`) writes them: every piece with its
// score and its type (SentencePiece's piece types are llama.cpp's token types, number for number),
// ids past the model's pieces as "[PAD<id>]" (score −10000, UNUSED), the tokenizer_config.json's
// added_tokens_decoder over them (score −1000, CONTROL when special), and add_bos_token /
// add_eos_token / add_prefix_space only where tokenizer_config.json sets them to a boolean.
// llama.cpp runs the pieces with SentencePiece's BPE merge loop and no normalizer: a Unigram
// model, a normalization rule or a suffix space would tokenize differently there, and is refused.
import { readSentencePieceProto } from '../../model/sentencepiece-model.ts';
import { TokenizerError } from '../../model/tokenizer.ts';
import { TOKEN_TYPE, type GgufVocabulary, type TokenizerConfig } from './vocabulary.ts';

/** convert_hf_to_gguf.py's does_token_look_special: added tokens that are control tokens whatever they say. */
function looksSpecial(token: string): boolean {
  return ['<pad>', '<mask>', '<2mass>', '[@BOS@]'].includes(token) || (token.startsWith('<|') && token.endsWith('|>'))
    || (token.startsWith('<\uff5c') && token.endsWith('\uff5c>')) || (token.startsWith('<unused') && token.endsWith('>'));
}

/** A boolean setting of tokenizer_config.json, as the converter takes it (anything else is unset). */
export function configFlag(config: TokenizerConfig | undefined, key: string): boolean | undefined {
  const value = config?.[key];
  return typeof value === 'boolean' ? value : undefined;
}

export function sentencePieceVocabulary(bytes: Uint8Array, path: string, vocabSize: number, config?: TokenizerConfig): GgufVocabulary {
  const model = readSentencePieceProto(bytes, path);
  const refuse = (why: string) => new TokenizerError(path, `${why}: llama.cpp's SentencePiece tokenizer (tokenizer.ggml.model = llama) would tokenize differently, so the GGUF export refuses it`);
  if (model.modelType !== 2) throw refuse(`a SentencePiece ${model.modelTypeName} model`);
  if (model.normalization !== 'identity') throw refuse(`normalization rule '${model.normalization}'`);
  if (model.treatWhitespaceAsSuffix) throw refuse('treat_whitespace_as_suffix is set');
  if (model.pieces.length > vocabSize) throw new TokenizerError(path, `the tokenizer has ${model.pieces.length} pieces but the model has a vocabulary of ${vocabSize}`);
  const tokens = Array.from({ length: vocabSize }, (_, id) => `[PAD${id}]`);
  const scores = new Array<number>(vocabSize).fill(-10000);
  const tokenTypes = new Array<number>(vocabSize).fill(TOKEN_TYPE.unused);
  model.pieces.forEach((piece, id) => {
    tokens[id] = Buffer.from(piece, 'latin1').toString('utf8');
    scores[id] = model.scores[id]!;
    tokenTypes[id] = model.types[id]!;
  });
  const decoder = config?.added_tokens_decoder;
  if (typeof decoder === 'object' && decoder !== null) {
    for (const [key, entry] of Object.entries(decoder as Record<string, unknown>)) {
      const id = Number(key);
      const content = (entry as { content?: unknown } | null)?.content;
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize || typeof content !== 'string') {
        throw new TokenizerError('tokenizer_config.json', `added_tokens_decoder entry ${JSON.stringify(key)} is not a token of the model's ${vocabSize}`);
      }
      const special = (entry as { special?: unknown }).special === true || looksSpecial(content);
      tokenTypes[id] = special ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined;
      tokens[id] = special ? content : content.replaceAll('\u2581', ' ');
      scores[id] = -1000;
    }
  }
  const addBos = configFlag(config, 'add_bos_token');
  const addEos = configFlag(config, 'add_eos_token');
  // The converter writes add_prefix_space as tokenizer_config.json gives it; llama.cpp's default
  // (a space prefix) is SentencePiece's add_dummy_prefix, so a model without one says so.
  const addSpacePrefix = configFlag(config, 'add_prefix_space') ?? (model.addDummyPrefix ? undefined : false);
  return {
    tokens, scores, tokenTypes, unk: model.unk, bos: model.bos, eos: model.eos, pre: 'default',
    ...(addBos !== undefined ? { addBos } : {}), ...(addEos !== undefined ? { addEos } : {}),
    ...(addSpacePrefix !== undefined ? { addSpacePrefix } : {}),
    source: `the SentencePiece model ${path} (${model.pieces.length} pieces)`,
  };
}
