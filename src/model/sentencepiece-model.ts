// A SentencePiece model file (tokenizer.model, tok512.model): a protobuf ModelProto, read here
// field by field (sentencepiece_model.proto) into run.c's encoder, which is SentencePiece's BPE
// algorithm. What that encoder cannot do exactly is refused, naming the setting: a Unigram model,
// a normalization rule other than identity, whitespace as a suffix.
//
//   ModelProto      1: pieces (repeated SentencePiece)  2: trainer_spec  3: normalizer_spec
//   SentencePiece   1: piece (string)  2: score (float)  3: type (1 normal, 2 unknown, 3 control,
//                   4 user-defined, 5 unused, 6 byte)
//   TrainerSpec     3: model_type (1 unigram, 2 BPE, 3 word, 4 char)  24: treat_whitespace_as_suffix
//                   40: unk_id (0)  41: bos_id (1)  42: eos_id (2)
//   NormalizerSpec  1: name ("identity")  3: add_dummy_prefix (true)  4: remove_extra_whitespaces (true)
import { binary, ScoredBpeTokenizer } from './scored-bpe.ts';
import { TokenizerError } from './tokenizer.ts';

type Field = { readonly field: number; readonly varint?: number; readonly bytes?: Uint8Array; readonly float?: number };

class Truncated extends Error {}

/** The fields of one protobuf message, in order. */
function fields(bytes: Uint8Array): Field[] {
  const out: Field[] = [];
  let at = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      if (at >= bytes.length) throw new Truncated();
      const b = bytes[at++]!;
      // Values past 2^53 (an unset pad_id of -1 is ten bytes) keep only their low bits' meaning.
      if (shift < 53) value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return value;
      if (shift > 63) throw new Truncated();
    }
  };
  const take = (n: number): Uint8Array => {
    if (at + n > bytes.length) throw new Truncated();
    const part = bytes.subarray(at, at + n);
    at += n;
    return part;
  };
  while (at < bytes.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    switch (key % 8) {
      case 0: out.push({ field, varint: varint() }); break;
      case 1: take(8); break;
      case 2: out.push({ field, bytes: take(varint()) }); break;
      case 5: { const b = take(4); out.push({ field, float: new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true) }); break; }
      default: throw new Truncated();
    }
  }
  return out;
}

const NORMAL = 1, USER_DEFINED = 4;
const MODEL_TYPES = ['', 'Unigram', 'BPE', 'word', 'char'];

/** The fields of a SentencePiece model that its readers need, as the file holds them. */
export interface SentencePieceProto {
  /** Pieces as stored: a space is U+2581 '▁', in the binary (latin1) string of its UTF-8 bytes. */
  readonly pieces: readonly string[];
  readonly scores: readonly number[];
  /** SentencePiece's piece types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. */
  readonly types: readonly number[];
  /** 1 Unigram, 2 BPE, 3 word, 4 char. */
  readonly modelType: number;
  readonly modelTypeName: string;
  readonly unk: number;
  readonly bos: number;
  readonly eos: number;
  readonly normalization: string;
  readonly addDummyPrefix: boolean;
  readonly removeExtraWhitespaces: boolean;
  readonly treatWhitespaceAsSuffix: boolean;
}

export const NOT_A_SENTENCEPIECE_MODEL = `not a SentencePiece model (a protobuf ModelProto); qalc reads llama2.c tokenizer.bin, SentencePiece .model and Hugging Face tokenizer.json`;

/** A SentencePiece model file's pieces and settings, whatever its model type. */
export function readSentencePieceProto(bytes: Uint8Array, path: string): SentencePieceProto {
  const notAModel = NOT_A_SENTENCEPIECE_MODEL;
  try {
    const model = fields(bytes);
    const pieces: string[] = [];
    const scores: number[] = [];
    const types: number[] = [];
    const trainer = new Map<number, Field>();
    const normalizer = new Map<number, Field>();
    for (const f of model) {
      if (f.field === 1 && f.bytes) {
        let piece: string | undefined;
        let score = 0;
        let type = NORMAL;
        for (const p of fields(f.bytes)) {
          if (p.field === 1 && p.bytes) piece = binary(p.bytes);
          else if (p.field === 2 && p.float !== undefined) score = p.float;
          else if (p.field === 3 && p.varint !== undefined) type = p.varint;
        }
        if (piece === undefined) throw new TokenizerError(path, `piece ${pieces.length} has no text: ${notAModel}`);
        pieces.push(piece);
        scores.push(score);
        types.push(type);
      } else if (f.field === 2 && f.bytes) for (const t of fields(f.bytes)) trainer.set(t.field, t);
      else if (f.field === 3 && f.bytes) for (const n of fields(f.bytes)) normalizer.set(n.field, n);
    }
    if (pieces.length < 3) throw new TokenizerError(path, `${pieces.length} pieces: ${notAModel}`);
    const modelType = trainer.get(3)?.varint ?? 1;
    const rule = normalizer.get(1)?.bytes;
    const id = (field: number, fallback: number, what: string): number => {
      const value = trainer.get(field)?.varint ?? fallback;
      if (value >= pieces.length) throw new TokenizerError(path, `${what} ${value} is outside its ${pieces.length} pieces`);
      return value;
    };
    return {
      pieces, scores, types, modelType, modelTypeName: MODEL_TYPES[modelType] ?? `type ${modelType}`,
      unk: id(40, 0, 'unk_id'), bos: id(41, 1, 'bos_id'), eos: id(42, 2, 'eos_id'),
      normalization: rule ? new TextDecoder().decode(rule) : 'nmt_nfkc',
      addDummyPrefix: (normalizer.get(3)?.varint ?? 1) !== 0,
      removeExtraWhitespaces: (normalizer.get(4)?.varint ?? 1) !== 0,
      treatWhitespaceAsSuffix: Boolean(trainer.get(24)?.varint),
    };
  } catch (e) {
    if (e instanceof Truncated) throw new TokenizerError(path, `the file ends inside a protobuf field: ${notAModel}`);
    throw e;
  }
}

export function parseSentencePieceModel(bytes: Uint8Array, path: string): ScoredBpeTokenizer {
  const model = readSentencePieceProto(bytes, path);
  if (model.modelType !== 2) {
    throw new TokenizerError(path, `a SentencePiece ${model.modelTypeName} model: qalc's SentencePiece reader encodes BPE models only; ` +
      `give the tokenizer.json that transformers converts from it (tokenizer = "…/tokenizer.json")`);
  }
  if (model.normalization !== 'identity') {
    throw new TokenizerError(path, `normalization rule '${model.normalization}': qalc's SentencePiece reader has the identity rule only; give the model's tokenizer.json instead`);
  }
  if (model.treatWhitespaceAsSuffix) throw new TokenizerError(path, `treat_whitespace_as_suffix is set: qalc's SentencePiece reader puts the space before a word, as LLaMA's do; give the model's tokenizer.json instead`);
  const { types } = model;
  return new ScoredBpeTokenizer({
    // SentencePiece writes a space as U+2581 '▁' (bytes e2 96 81); run.c's pieces use ' '.
    pieces: model.pieces.map((piece) => piece.replaceAll('\xe2\x96\x81', ' ')),
    scores: Float32Array.from(model.scores),
    unk: model.unk,
    bos: model.bos,
    eos: model.eos,
    matchable: (i) => types[i] === NORMAL || types[i] === USER_DEFINED,
    addDummyPrefix: model.addDummyPrefix,
    removeExtraWhitespaces: model.removeExtraWhitespaces,
    fingerprint: Buffer.concat([Buffer.from('sentencepiece-bpe-v1\0'), bytes]),
  });
}
