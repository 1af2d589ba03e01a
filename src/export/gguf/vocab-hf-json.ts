// A Hugging Face tokenizer.json as GGUF's `tokenizer.ggml.*` arrays, for a LLaMA
// SentencePiece-BPE one only (model BPE with byte_fallback, a Sequence decoder: the test of
// llama.cpp's LlamaHfVocab), which llama.cpp runs as a SentencePiece vocabulary
// (tokenizer.ggml.model = llama). Byte-level BPE files (GPT-2, LLaMA 3: llama.cpp's `gpt2`
// vocabulary, with merges and a pre-tokenizer) and Unigram or WordPiece files are refused by name.
//
// Tokens and types as LlamaHfVocab gives them (BYTE for <0xNN>, CONTROL for the special added
// tokens, NORMAL for the rest), except the unknown token, which is UNKNOWN as in the SentencePiece
// model such a file is converted from.
//
// Scores differ from the converter on purpose. LlamaHfVocab writes a placeholder −1000 for every
// token ("needs to be implemented"); llama.cpp's SentencePiece tokenizer merges the adjacent pair
// whose joined piece scores highest, so with equal scores it merges the leftmost pair and
// tokenizes text differently from the tokenizer.json. Here a piece's score is minus the place of
// the first merge that makes it, in merge order (the pieces no merge makes follow, in id order;
// special and byte tokens score 0): llama.cpp then merges in the file's order. For a tokenizer.json
// that transformers converted from a SentencePiece BPE model this gives back that model's scores
// exactly (tested on stories260K's and LLaMA 2's).
import { TokenizerError } from '../../model/tokenizer.ts';
import { configFlag } from './vocab-sentencepiece.ts';
import { TOKEN_TYPE, type GgufVocabulary, type TokenizerConfig } from './vocabulary.ts';

interface AddedToken { readonly id: number; readonly content: string; readonly special: boolean }

interface LlamaBpeJson {
  readonly pieces: string[];
  readonly added: AddedToken[];
  readonly merges: [string, string][];
  readonly unkToken: string | undefined;
  readonly addsSpacePrefix: boolean;
}

function object(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : undefined;
}

function readLlamaBpeJson(bytes: Uint8Array, path: string): LlamaBpeJson {
  let json: Record<string, unknown> | undefined;
  try {
    json = object(JSON.parse(new TextDecoder().decode(bytes)));
  } catch (e) {
    throw new TokenizerError(path, `the tokenizer is not valid JSON: ${(e as Error).message}`);
  }
  const model = object(json?.model);
  if (!json || !model) throw new TokenizerError(path, 'it has no "model": is it a Hugging Face tokenizer.json?');
  const decoder = object(json.decoder);
  if (model.type === 'BPE' && model.byte_fallback !== true) {
    throw new TokenizerError(path, 'a byte-level BPE tokenizer.json (as GPT-2\'s and LLaMA 3\'s: no byte_fallback): llama.cpp reads it as a `gpt2` vocabulary with merges and a pre-tokenizer, which qalc\'s GGUF export does not write; it writes LLaMA SentencePiece vocabularies');
  }
  if (model.type !== 'BPE' || decoder?.type !== 'Sequence') {
    throw new TokenizerError(path, `not a LLaMA SentencePiece-BPE tokenizer.json (model ${JSON.stringify(model.type)}, decoder ${JSON.stringify(decoder?.type)}; LLaMA's is BPE with byte_fallback and a Sequence decoder): qalc's GGUF export writes LLaMA SentencePiece vocabularies only`);
  }
  const vocab = object(model.vocab) ?? {};
  const pieces: string[] = [];
  for (const [piece, id] of Object.entries(vocab)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || pieces[id] !== undefined) throw new TokenizerError(path, `vocabulary entry ${JSON.stringify(piece)} has id ${JSON.stringify(id)}: not a free one`);
    pieces[id] = piece;
  }
  for (let id = 0; id < pieces.length; id++) if (pieces[id] === undefined) throw new TokenizerError(path, `the vocabulary has no token ${id}`);
  const added: AddedToken[] = [];
  for (const entry of Array.isArray(json.added_tokens) ? json.added_tokens : []) {
    const token = object(entry);
    if (typeof token?.id !== 'number' || typeof token.content !== 'string') throw new TokenizerError(path, `added token ${JSON.stringify(entry)} has no id and content`);
    added.push({ id: token.id, content: token.content, special: token.special === true });
  }
  const merges = (Array.isArray(model.merges) ? model.merges : []).map((merge: unknown): [string, string] => {
    const pair = typeof merge === 'string' ? merge.split(' ') : merge;
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') throw new TokenizerError(path, `merge ${JSON.stringify(merge)} is not a pair of pieces`);
    return [pair[0], pair[1]];
  });
  // LLaMA's files put the "▁" before the text with a Prepend normalizer (older) or a Metaspace
  // pre-tokenizer (newer); llama.cpp's SentencePiece tokenizer adds it unless told not to.
  const steps = (value: unknown, list: string): Record<string, unknown>[] => {
    const step = object(value);
    if (!step) return [];
    return step.type === 'Sequence' && Array.isArray(step[list]) ? (step[list] as unknown[]).flatMap((s) => steps(s, list)) : [step];
  };
  const prepends = steps(json.normalizer, 'normalizers').some((s) => s.type === 'Prepend' && s.prepend === '\u2581')
    || steps(json.pre_tokenizer, 'pretokenizers').some((s) => s.type === 'Metaspace' && s.prepend_scheme !== 'never' && s.add_prefix_space !== false);
  return { pieces, added, merges, unkToken: typeof model.unk_token === 'string' ? model.unk_token : undefined, addsSpacePrefix: prepends };
}

/** The pieces of a tokenizer.json's model, by id (to compare with a SentencePiece model's). */
export function hfJsonPieces(bytes: Uint8Array, path: string): readonly string[] {
  return readLlamaBpeJson(bytes, path).pieces;
}

function tokenText(value: unknown): string | undefined {
  return typeof value === 'string' ? value : typeof object(value)?.content === 'string' ? object(value)!.content as string : undefined;
}

export function hfJsonVocabulary(bytes: Uint8Array, path: string, vocabSize: number, config?: TokenizerConfig): GgufVocabulary {
  const json = readLlamaBpeJson(bytes, path);
  const tokens = [...json.pieces];
  const special = new Set<number>();
  for (const token of [...json.added].sort((a, b) => a.id - b.id)) {
    if (token.id < tokens.length) {
      if (tokens[token.id] !== token.content) throw new TokenizerError(path, `added token ${token.id} ${JSON.stringify(token.content)} is ${JSON.stringify(tokens[token.id])} in the vocabulary`);
    } else if (token.id === tokens.length) tokens.push(token.content);
    else throw new TokenizerError(path, `added token ${token.id} ${JSON.stringify(token.content)} leaves a gap after the vocabulary's ${tokens.length} tokens`);
    if (token.special) special.add(token.id);
  }
  if (tokens.length !== vocabSize) throw new TokenizerError(path, `the tokenizer has ${tokens.length} tokens but the model has a vocabulary of ${vocabSize}`);
  const idOf = new Map(tokens.map((token, id) => [token, id]));
  const specialId = (key: string, fallback: string | undefined): number => {
    const text = tokenText(config?.[key]) ?? fallback;
    const id = text === undefined ? undefined : idOf.get(text);
    if (id === undefined) throw new TokenizerError(path, `its ${key} ${JSON.stringify(text)} is not in the vocabulary`);
    return id;
  };
  const unk = specialId('unk_token', json.unkToken ?? '<unk>');
  const firstMade = new Map<string, number>();
  for (const [left, right] of json.merges) if (!firstMade.has(left + right)) firstMade.set(left + right, firstMade.size);
  let unmade = firstMade.size;
  const tokenTypes: number[] = [];
  const scores = tokens.map((token, id) => {
    const type = id === unk ? TOKEN_TYPE.unknown : special.has(id) ? TOKEN_TYPE.control
      : /^<0x[0-9A-Fa-f]{2}>$/.test(token) ? TOKEN_TYPE.byte : id >= json.pieces.length ? TOKEN_TYPE.userDefined : TOKEN_TYPE.normal;
    tokenTypes.push(type);
    if (type === TOKEN_TYPE.userDefined) return -1000;
    if (type !== TOKEN_TYPE.normal) return 0;
    return -(firstMade.get(token) ?? unmade++);
  });
  const addBos = configFlag(config, 'add_bos_token');
  const addEos = configFlag(config, 'add_eos_token');
  const addSpacePrefix = configFlag(config, 'add_prefix_space') ?? (json.addsSpacePrefix ? undefined : false);
  return {
    tokens, scores, tokenTypes, unk, bos: specialId('bos_token', '<s>'), eos: specialId('eos_token', '</s>'), pre: 'default',
    ...(addBos !== undefined ? { addBos } : {}), ...(addEos !== undefined ? { addEos } : {}),
    ...(addSpacePrefix !== undefined ? { addSpacePrefix } : {}),
    source: `the Hugging Face tokenizer ${path} (${tokens.length} tokens, scores from its ${json.merges.length} merges)`,
  };
}
