// The vocabulary of a GGUF for llama.cpp (`tokenizer.ggml.*`), from whichever tokenizer the
// merged model carries, the way llama.cpp's converters write it:
//  - a llama2.c tokenizer.bin: as convert-llama2c-to-ggml (vocab-llama2c.ts);
//  - a SentencePiece .model: as convert_hf_to_gguf.py's `_set_vocab_sentencepiece` (vocab-sentencepiece.ts);
//  - a Hugging Face tokenizer.json: from the tokenizer.model of the same checkpoint folder when
//    there is one and it holds the same pieces (what the converter does: it prefers
//    tokenizer.model), else from the tokenizer.json itself if it is a LLaMA SentencePiece-BPE one
//    (vocab-hf-json.ts), else refused by name.
// The converter also reads tokenizer_config.json from the model folder (add_bos_token,
// add_eos_token, added_tokens_decoder, add_prefix_space): here that is the checkpoint folder's.
import { tokenizerFormat } from '../../model/read-tokenizer.ts';
import { readSentencePieceProto } from '../../model/sentencepiece-model.ts';
import { TokenizerError } from '../../model/tokenizer.ts';
import { hfJsonPieces, hfJsonVocabulary } from './vocab-hf-json.ts';
import { llama2cVocabulary } from './vocab-llama2c.ts';
import { sentencePieceVocabulary } from './vocab-sentencepiece.ts';
import type { GgufVocabulary, TokenizerConfig } from './vocabulary.ts';

function tokenizerConfig(files: ReadonlyMap<string, Uint8Array> | undefined): TokenizerConfig | undefined {
  const bytes = files?.get('tokenizer_config.json');
  if (!bytes) return undefined;
  try {
    const value: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as TokenizerConfig;
  } catch { /* refused below */ }
  throw new TokenizerError('tokenizer_config.json', 'the checkpoint folder\'s tokenizer config is not a JSON object');
}

export interface GgufVocabularyResult {
  readonly vocabulary: GgufVocabulary;
  readonly notices: readonly string[];
}

/**
 * The GGUF vocabulary of a merged model's tokenizer (`name` says its format) for a model of
 * `vocabSize` tokens; `checkpointFiles` are the companions of its checkpoint folder.
 */
export function ggufVocabulary(tokenizer: { readonly name: string; readonly bytes: Uint8Array }, vocabSize: number,
  checkpointFiles?: ReadonlyMap<string, Uint8Array>): GgufVocabularyResult {
  const config = tokenizerConfig(checkpointFiles);
  switch (tokenizerFormat(tokenizer.name)) {
    case 'llama2c': return { vocabulary: llama2cVocabulary(tokenizer.bytes, vocabSize, tokenizer.name), notices: [] };
    case 'sentencepiece': return { vocabulary: sentencePieceVocabulary(tokenizer.bytes, tokenizer.name, vocabSize, config), notices: [] };
    case 'hf': {
      const model = checkpointFiles?.get('tokenizer.model');
      if (model) {
        const folderModel = 'tokenizer.model of the checkpoint folder';
        const ours = hfJsonPieces(tokenizer.bytes, tokenizer.name);
        const theirs = readSentencePieceProto(model, folderModel).pieces.map((piece) => Buffer.from(piece, 'latin1').toString('utf8'));
        const differs = Array.from({ length: Math.max(ours.length, theirs.length) }, (_, id) => id).find((id) => ours[id] !== theirs[id]);
        if (differs === undefined) return { vocabulary: sentencePieceVocabulary(model, folderModel, vocabSize, config), notices: [] };
        return {
          vocabulary: hfJsonVocabulary(tokenizer.bytes, tokenizer.name, vocabSize, config),
          notices: [`notice: the checkpoint folder's tokenizer.model is not the merged model's ${tokenizer.name} (piece ${differs}: ${JSON.stringify(theirs[differs] ?? null)} where it has ${JSON.stringify(ours[differs] ?? null)}): the GGUF vocabulary is built from ${tokenizer.name}`],
        };
      }
      return { vocabulary: hfJsonVocabulary(tokenizer.bytes, tokenizer.name, vocabSize, config), notices: [] };
    }
  }
}
