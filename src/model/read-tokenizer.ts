// Which reader a tokenizer file needs, and whether it fits the model: by its name, a Hugging
// Face tokenizer.json, a SentencePiece .model, or else llama2.c's tokenizer.bin.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { systemErrorReason } from '../system-error.ts';
import { parseHfTokenizer, readHfTokenizer } from './hf-tokenizer.ts';
import { parseLlama2cTokenizer } from './llama2c-tokenizer.ts';
import { parseSentencePieceModel } from './sentencepiece-model.ts';
import { TokenizerError, type Tokenizer } from './tokenizer.ts';

export type TokenizerFormat = 'hf' | 'sentencepiece' | 'llama2c';

export function tokenizerFormat(path: string): TokenizerFormat {
  if (basename(path).endsWith('.json')) return 'hf';
  if (basename(path).endsWith('.model')) return 'sentencepiece';
  return 'llama2c';
}

function readBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new TokenizerError(path, `cannot read the tokenizer: ${systemErrorReason(e)}`);
  }
}

/** The tokenizer in `path`, whatever its vocabulary. */
export function readAnyTokenizer(path: string): Tokenizer {
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) {
    const inside = tokenizerInDirectory(path);
    if (!inside) throw new TokenizerError(path, 'a folder without tokenizer.json or tokenizer.model: name the tokenizer file');
    path = inside;
  }
  switch (tokenizerFormat(path)) {
    case 'hf': return readHfTokenizer(path);
    case 'sentencepiece': return parseSentencePieceModel(readBytes(path), path);
    case 'llama2c': return parseLlama2cTokenizer(readBytes(path), path);
  }
}

/**
 * A tokenizer file's bytes (as a merged model carries them) for a model of `vocabSize` tokens;
 * `name` is the file's name, which says its format, and names it in errors.
 */
export function parseTokenizer(bytes: Uint8Array, vocabSize: number, name: string): Tokenizer {
  const tokenizer = tokenizerFormat(name) === 'hf' ? parseHfTokenizer(bytes, name)
    : tokenizerFormat(name) === 'sentencepiece' ? parseSentencePieceModel(bytes, name) : parseLlama2cTokenizer(bytes, name);
  return fitsModel(tokenizer, vocabSize, name, 'the model');
}

function fitsModel(tokenizer: Tokenizer, vocabSize: number, path: string, model: string): Tokenizer {
  if (tokenizer.vocabSize !== vocabSize) {
    throw new TokenizerError(path, `the tokenizer has ${tokenizer.vocabSize} tokens but ${model} has a vocabulary of ${vocabSize}: they are not made for each other`);
  }
  return tokenizer;
}

/**
 * The tokenizer in `path` for a model of `vocabSize` tokens; `model` names the model's file in
 * the error when they differ (an id past the tokenizer's would print nothing, one past the
 * model's would read outside its embedding).
 */
export function readTokenizer(path: string, vocabSize: number, model = 'the model'): Tokenizer {
  return fitsModel(readAnyTokenizer(path), vocabSize, path, model);
}

/** The tokenizer a Hugging Face model directory carries: tokenizer.json, else tokenizer.model. */
export function tokenizerInDirectory(dir: string): string | undefined {
  return ['tokenizer.json', 'tokenizer.model'].map((name) => join(dir, name)).find((p) => existsSync(p));
}

/**
 * The tokenizer a spec's model uses: the one it names (relative to `dir`), else the one its
 * Hugging Face or GPTQ checkpoint directory carries; undefined when there is neither.
 */
export function modelTokenizerPath(written: string | undefined, checkpoint: { readonly path: string; readonly format: string } | undefined, dir: string): string | undefined {
  if (written) return resolve(dir, written);
  if (checkpoint && checkpoint.format !== 'llama2c') return tokenizerInDirectory(resolve(dir, checkpoint.path));
  return undefined;
}
