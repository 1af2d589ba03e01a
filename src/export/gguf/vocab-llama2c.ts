// A llama2.c tokenizer as GGUF's `tokenizer.ggml.*` arrays, the way llama.cpp's
// convert-llama2c-to-ggml writes them (checked against ../shared/models/stories260K/stories260K.gguf):
// SentencePiece's "▁" where llama2.c's export put a space, "<s>"/"</s>" without the newlines
// llama2.c wraps them in, and token types UNKNOWN (id 0), CONTROL (BOS, EOS), BYTE
// (<0x00>…<0xFF>, ids 3…258) and NORMAL for the rest.
import { parseLlama2cTokenizer } from '../../model/llama2c-tokenizer.ts';
import { TokenizerError } from '../../model/tokenizer.ts';
import { TOKEN_TYPE, type GgufVocabulary } from './vocabulary.ts';

export function llama2cVocabulary(bytes: Uint8Array, vocabSize: number, path: string): GgufVocabulary {
  const tokenizer = parseLlama2cTokenizer(bytes, path);
  if (tokenizer.vocabSize !== vocabSize) throw new TokenizerError(path, `the tokenizer has ${tokenizer.vocabSize} tokens but the model has a vocabulary of ${vocabSize}`);
  const tokens = tokenizer.pieces.map((piece, id) => {
    const text = Buffer.from(piece, 'latin1').toString('utf8');
    return id === 1 || id === 2 ? text.trim() : text.replaceAll(' ', '\u2581');
  });
  const tokenTypes = tokens.map((token, id) => id === 0 ? TOKEN_TYPE.unknown
    : id === 1 || id === 2 ? TOKEN_TYPE.control
      : /^<0x[0-9A-F]{2}>$/.test(token) ? TOKEN_TYPE.byte : TOKEN_TYPE.normal);
  return { tokens, scores: Array.from(tokenizer.scores), tokenTypes, unk: 0, bos: 1, eos: 2, source: `the llama2.c tokenizer ${path}` };
}
