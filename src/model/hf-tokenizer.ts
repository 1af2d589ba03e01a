// A Hugging Face tokenizer.json (with the tokenizer_config.json beside it, when there is one),
// run by @huggingface/tokenizers, the pure-JavaScript port of the Rust `tokenizers` library that
// transformers uses. For LLaMA's SentencePiece vocabularies it gives the ids of run.c's encoder
// (tested on all of tiny Shakespeare) in a fraction of the time: run.c's merge loop is quadratic.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Tokenizer as HfLibraryTokenizer } from '@huggingface/tokenizers';
import { systemErrorReason } from '../system-error.ts';
import { TokenizerError, type EncodeOptions, type Tokenizer } from './tokenizer.ts';

/** A JSON object file's value, and its bytes (what the token cache's fingerprint holds). */
type JsonFile = { value: Record<string, unknown>; bytes: Uint8Array };

function readJson(path: string, what: string): JsonFile {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new TokenizerError(path, `cannot read the ${what}: ${systemErrorReason(e)}`);
  }
  return parseJson(bytes, path, what);
}

function parseJson(bytes: Uint8Array, path: string, what: string): JsonFile {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new TokenizerError(path, `the ${what} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TokenizerError(path, `the ${what} is not a JSON object`);
  return { value: value as Record<string, unknown>, bytes };
}

/** A special token as tokenizer_config.json writes it: "<s>" or {"content": "<s>", …}. */
function tokenText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { content?: unknown }).content === 'string') return (value as { content: string }).content;
  return undefined;
}

export class HfTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bos: number;
  readonly eos: number;

  constructor(private readonly library: HfLibraryTokenizer, readonly fingerprint: Uint8Array, path: string, config: Record<string, unknown>) {
    const vocabulary = library.get_vocab(true);
    let largest = -1;
    for (const id of vocabulary.values()) largest = Math.max(largest, id);
    this.vocabSize = largest + 1;
    const special = (key: string, fallback: string): number => {
      const text = tokenText(config[key]) ?? fallback;
      const id = library.token_to_id(text);
      if (id === undefined) throw new TokenizerError(path, `its ${key} '${text}' is not in the vocabulary`);
      return id;
    };
    this.bos = special('bos_token', '<s>');
    this.eos = special('eos_token', '</s>');
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    // BOS and EOS are added here, as the caller asks, not by the file's post-processor.
    const ids = this.library.encode(text, { add_special_tokens: false }).ids;
    if (options.bos ?? true) ids.unshift(this.bos);
    if (options.eos ?? false) ids.push(this.eos);
    return ids;
  }

  decode(tokens: readonly number[]): string {
    return tokens.length === 0 ? '' : this.library.decode([...tokens], { skip_special_tokens: true });
  }
}

const MODEL_TYPES = ['BPE', 'Unigram', 'WordPiece'];

const NO_CONFIG: JsonFile = { value: {}, bytes: new Uint8Array() };

export function readHfTokenizer(path: string): HfTokenizer {
  const tokenizer = readJson(path, 'tokenizer');
  const configPath = join(dirname(path), 'tokenizer_config.json');
  const config = existsSync(configPath) ? readJson(configPath, 'tokenizer config') : NO_CONFIG;
  return hfTokenizerOf(tokenizer, config, path);
}

/** A tokenizer.json's bytes (one a merged model carries), without a tokenizer_config.json:
 *  BOS and EOS are then LLaMA's <s> and </s>. */
export function parseHfTokenizer(bytes: Uint8Array, path: string): HfTokenizer {
  return hfTokenizerOf(parseJson(bytes, path, 'tokenizer'), NO_CONFIG, path);
}

function hfTokenizerOf(tokenizer: JsonFile, config: JsonFile, path: string): HfTokenizer {
  const model = tokenizer.value.model as { type?: unknown } | undefined;
  if (typeof model !== 'object' || model === null) throw new TokenizerError(path, 'it has no "model": is it a Hugging Face tokenizer.json?');
  // The library guesses a model from its fields when the type is unknown; a file that says
  // another type is one it was not written for.
  if (!MODEL_TYPES.includes(String(model.type))) throw new TokenizerError(path, `its model type ${JSON.stringify(model.type)} is not one @huggingface/tokenizers runs (${MODEL_TYPES.join(', ')})`);
  let library: HfLibraryTokenizer;
  try {
    library = new HfLibraryTokenizer(tokenizer.value, config.value);
  } catch (e) {
    throw new TokenizerError(path, `@huggingface/tokenizers cannot build this tokenizer: ${(e as Error).message}`);
  }
  const fingerprint = Buffer.concat([Buffer.from('hf-tokenizers-0.2.0\0'), tokenizer.bytes, Buffer.from('\0'), config.bytes]);
  return new HfTokenizer(library, fingerprint, path, config.value);
}
