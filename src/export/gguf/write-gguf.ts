// A merged model as GGUF v3 for llama.cpp, laid out as llama.cpp's own converter lays out
// stories260K.gguf: the same keys in the same order, the same tensor names in the same order
// (token_embd, output_norm, output, then per block attn_q, attn_k, attn_v, attn_output,
// attn_norm, ffn_gate, ffn_down, ffn_up, ffn_norm), llama2.c's interleaved rotary order (which
// llama.cpp's LLAMA uses, so q and k need no permutation), shapes as ggml's ne = [in, out].
//
// Quantized projections with 4-bit codes and groups that are multiples of 32 are Q4_1 (exact
// up to fp16 d and m, see q4-1.ts). Others have no exact GGUF type: they are written
// dequantized as F32 — exactly the float32 weights qalc itself runs — with a notice, or refused
// under `strict`. Embeddings and norms are F32, as in the reference.
//
// The vocabulary is the merged model's tokenizer as llama.cpp's converters write it (llama-vocab.ts:
// llama2.c, SentencePiece or a LLaMA tokenizer.json); a vocabulary that is not llama2.c's adds the
// keys convert_hf_to_gguf.py writes for it (tokenizer.ggml.pre, add_bos_token, …).
//
// The metadata is serialized by @huggingface/gguf; the tensor infos and data, which it does not
// write, are written here, streamed to the file one tensor at a time.
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { GGUFValueType, serializeGgufMetadata, type GGUFTypedMetadata } from '@huggingface/gguf';
import { headDim } from '../../model/architecture.ts';
import type { Tensor } from '../../model/llama2c-checkpoint.ts';
import { PROJECTIONS, type ProjectionName } from '../../train/qalora-spec.ts';
import { denseWeight, type MergedModel } from '../merged-model.ts';
import { ggufVocabulary } from './llama-vocab.ts';
import { encodeQ4_1, q4_1Misfit } from './q4-1.ts';
import { TokenizerError } from '../../model/tokenizer.ts';

export const GGUF_ALIGNMENT = 32;
/** ggml_type values. */
export const GGML_TYPE = { F32: 0, F16: 1, Q4_1: 3 } as const;

/** llama.cpp's tensor names for qalc's projections. */
export const GGUF_PROJECTION_NAMES: Readonly<Record<ProjectionName, string>> = {
  q: 'attn_q', k: 'attn_k', v: 'attn_v', o: 'attn_output', gate: 'ffn_gate', down: 'ffn_down', up: 'ffn_up',
};

export class GgufExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GgufExportError';
  }
}

interface PlannedTensor {
  readonly name: string;
  /** ggml ne, innermost first. */
  readonly ne: readonly number[];
  readonly type: number;
  readonly bytes: () => Uint8Array;
}

export interface GgufLayerReport {
  readonly tensor: string;
  readonly type: 'Q4_1' | 'F32';
  /** Q4_1: max |stored − merged| weight (fp16 rounding of d and m); F32: 0. */
  readonly maxAbsWeightError: number;
  /** Why it is not Q4_1. */
  readonly reason?: string;
}

export interface GgufResult {
  readonly layers: readonly GgufLayerReport[];
  readonly notices: readonly string[];
  readonly bytes: number;
}

function f32Bytes(data: Float32Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}


function vectorTensor(name: string, t: Tensor): PlannedTensor {
  return { name, ne: [t.data.length], type: GGML_TYPE.F32, bytes: () => f32Bytes(t.data) };
}

function metadata(model: MergedModel, tensorCount: number, checkpointFiles: ReadonlyMap<string, Uint8Array> | undefined, notices: string[]): GGUFTypedMetadata {
  const { arch } = model;
  if (!model.tokenizer) throw new GgufExportError(`the merged model of spec ${model.spec} carries no tokenizer: GGUF needs its vocabulary (give the spec a \`tokenizer\`, merge again)`);
  let vocab;
  try {
    const result = ggufVocabulary(model.tokenizer, arch.vocab, checkpointFiles);
    vocab = result.vocabulary;
    notices.push(...result.notices, `vocabulary: ${vocab.source}`);
  } catch (e) {
    if (e instanceof TokenizerError) throw new GgufExportError(`the merged model's tokenizer: ${e.message}`);
    throw e;
  }
  const u32 = (value: number) => ({ value, type: GGUFValueType.UINT32 });
  const noToken = 0xffffffff;
  const keys = {
    'tokenizer.ggml.tokens': { value: vocab.tokens, type: GGUFValueType.ARRAY, subType: GGUFValueType.STRING },
    'tokenizer.ggml.scores': { value: vocab.scores, type: GGUFValueType.ARRAY, subType: GGUFValueType.FLOAT32 },
    'tokenizer.ggml.token_type': { value: vocab.tokenTypes, type: GGUFValueType.ARRAY, subType: GGUFValueType.INT32 },
    'tokenizer.ggml.model': { value: 'llama', type: GGUFValueType.STRING },
    ...(vocab.pre !== undefined ? { 'tokenizer.ggml.pre': { value: vocab.pre, type: GGUFValueType.STRING } } : {}),
    'general.architecture': { value: 'llama', type: GGUFValueType.STRING },
    'general.name': { value: model.spec || 'llama', type: GGUFValueType.STRING },
    'tokenizer.ggml.unknown_token_id': u32(vocab.unk),
    'tokenizer.ggml.bos_token_id': u32(vocab.bos),
    'tokenizer.ggml.eos_token_id': u32(vocab.eos),
    'tokenizer.ggml.seperator_token_id': u32(noToken),
    'tokenizer.ggml.padding_token_id': u32(noToken),
    ...(vocab.addBos !== undefined ? { 'tokenizer.ggml.add_bos_token': { value: vocab.addBos, type: GGUFValueType.BOOL } } : {}),
    ...(vocab.addEos !== undefined ? { 'tokenizer.ggml.add_eos_token': { value: vocab.addEos, type: GGUFValueType.BOOL } } : {}),
    ...(vocab.addSpacePrefix !== undefined ? { 'tokenizer.ggml.add_space_prefix': { value: vocab.addSpacePrefix, type: GGUFValueType.BOOL } } : {}),
    'llama.context_length': u32(arch.context),
    'llama.embedding_length': u32(arch.dim),
    'llama.feed_forward_length': u32(arch.hiddenDim),
    'llama.attention.head_count': u32(arch.heads),
    'llama.attention.head_count_kv': u32(arch.kvHeads),
    'llama.block_count': u32(arch.layers),
    'llama.rope.dimension_count': u32(headDim(arch)),
    // The model's RMSNorm ε and RoPE base. llama2.c's converter writes no freq_base (llama.cpp then
    // assumes 10000); it is written always, last, so the other keys keep that converter's order.
    'llama.attention.layer_norm_rms_epsilon': { value: arch.rmsNormEps, type: GGUFValueType.FLOAT32 },
    'llama.rope.freq_base': { value: arch.ropeTheta, type: GGUFValueType.FLOAT32 },
  };
  return {
    version: { value: 3, type: GGUFValueType.UINT32 },
    tensor_count: { value: BigInt(tensorCount), type: GGUFValueType.UINT64 },
    kv_count: { value: BigInt(Object.keys(keys).length), type: GGUFValueType.UINT64 },
    ...keys,
  } as GGUFTypedMetadata;
}

/** Every tensor in the reference's order, with how it will be stored. */
function plannedTensors(model: MergedModel, options: GgufOptions, layers: GgufLayerReport[], notices: string[]): PlannedTensor[] {
  const { arch } = model;
  const tensors: PlannedTensor[] = [
    { name: 'token_embd.weight', ne: [arch.dim, arch.vocab], type: GGML_TYPE.F32, bytes: () => f32Bytes(model.tokenEmbedding.data) },
    vectorTensor('output_norm.weight', model.rmsFinal),
    // Written even when tied, as llama.cpp's converter does.
    { name: 'output.weight', ne: [arch.dim, arch.vocab], type: GGML_TYPE.F32, bytes: () => f32Bytes(model.classifier.data) },
  ];
  const dense: string[] = [];
  model.blocks.forEach((block, l) => {
    const projection = (p: ProjectionName): PlannedTensor => {
      const merged = block.projections[p];
      const name = `blk.${l}.${GGUF_PROJECTION_NAMES[p]}.weight`;
      const [N, K] = merged.kind === 'dense' ? merged.weight.shape as [number, number] : [merged.weight.outFeatures, merged.inFeatures];
      const reason = merged.kind === 'dense' ? 'left unquantized by the spec' : options.dequantize ? 'dequantized on request'
        : merged.weight.inFeatures !== K ? `pad = zero stores ${merged.weight.inFeatures} input rows for ${K} inputs` : q4_1Misfit(merged.weight);
      if (merged.kind === 'quantized' && reason === undefined) {
        const weight = merged.weight;
        // Encoded as it is written, so a large model's blocks are never all in memory at once.
        return {
          name, ne: [K, N], type: GGML_TYPE.Q4_1, bytes: () => {
            const encoded = encodeQ4_1(weight);
            layers.push({ tensor: name, type: 'Q4_1', maxAbsWeightError: encoded.maxAbsError });
            return encoded.bytes;
          },
        };
      }
      if (options.strict && !options.dequantize && merged.kind === 'quantized') throw new GgufExportError(`${merged.prefix} (${name}): ${reason}: GGUF has no exact type for it (without --strict it is written dequantized as F32)`);
      dense.push(`${name} (${reason})`);
      return {
        name, ne: [K, N], type: GGML_TYPE.F32, bytes: () => {
          layers.push({ tensor: name, type: 'F32', maxAbsWeightError: 0, reason: reason! });
          return f32Bytes(denseWeight(merged));
        },
      };
    };
    tensors.push(projection('q'), projection('k'), projection('v'), projection('o'), vectorTensor(`blk.${l}.attn_norm.weight`, block.rmsAtt),
      projection('gate'), projection('down'), projection('up'), vectorTensor(`blk.${l}.ffn_norm.weight`, block.rmsFfn));
  });
  if (options.dequantize) notices.push(`notice: every projection stored dequantized as F32 (--dequantize): exactly qalc's float32 weights, not compact`);
  else if (dense.length > 0) notices.push(`notice: ${dense.length} of ${arch.layers * PROJECTIONS.length} projections have no exact GGUF quantized type and are stored dequantized as F32 (exact, not compact): ${dense.join(', ')}`);
  return tensors;
}

function byteSize(t: PlannedTensor): number {
  const count = t.ne.reduce((a, b) => a * b, 1);
  return t.type === GGML_TYPE.Q4_1 ? (count / 32) * 20 : count * 4;
}

const pad = (n: number) => Math.ceil(n / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;

function tensorInfos(tensors: readonly PlannedTensor[]): Uint8Array {
  const parts: Buffer[] = [];
  let offset = 0;
  for (const t of tensors) {
    const name = Buffer.from(t.name, 'utf8');
    const info = Buffer.alloc(8 + name.length + 4 + 8 * t.ne.length + 4 + 8);
    let at = info.writeBigUInt64LE(BigInt(name.length), 0);
    at += name.copy(info, at);
    at = info.writeUInt32LE(t.ne.length, at);
    for (const n of t.ne) at = info.writeBigUInt64LE(BigInt(n), at);
    at = info.writeUInt32LE(t.type, at);
    info.writeBigUInt64LE(BigInt(offset), at);
    parts.push(info);
    offset = pad(offset + byteSize(t));
  }
  return Buffer.concat(parts);
}

/** Writes `path` (the caller gives a temporary name and renames it when all is written). */
export interface GgufOptions {
  /** Refuse projections with no exact quantized type instead of writing them F32. */
  readonly strict?: boolean;
  /** Write every projection dequantized F32: qalc's own float32 weights, to tell Q4_1's rounding from the rest. */
  readonly dequantize?: boolean;
}

/** `checkpointFiles`: the companions of the model's checkpoint folder (its tokenizer.model and
 *  tokenizer_config.json, which llama.cpp's converter reads beside a tokenizer.json). */
export function writeGguf(path: string, model: MergedModel, options: GgufOptions = {}, checkpointFiles?: ReadonlyMap<string, Uint8Array>): GgufResult {
  const layers: GgufLayerReport[] = [];
  const notices: string[] = [];
  const tensors = plannedTensors(model, options, layers, notices);
  // alignment 1: serializeGgufMetadata pads its output to the alignment as if tensor data came
  // next, but the tensor infos follow the key-value pairs directly; the data's padding is ours.
  const header = serializeGgufMetadata(metadata(model, tensors.length, checkpointFiles, notices), { alignment: 1 });
  const infos = tensorInfos(tensors);
  const fd = openSync(path, 'wx');
  let written = 0;
  const write = (bytes: Uint8Array) => {
    let done = 0;
    while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
    written += bytes.length;
  };
  const padTo = (at: number) => { if (at > written) write(new Uint8Array(at - written)); };
  try {
    write(header);
    write(infos);
    padTo(pad(written));
    const dataStart = written;
    for (const t of tensors) {
      const bytes = t.bytes();
      if (bytes.length !== byteSize(t)) throw new Error(`${t.name}: ${bytes.length} bytes, expected ${byteSize(t)}`);
      write(bytes);
      padTo(dataStart + pad(written - dataStart));
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return { layers, notices, bytes: written };
}
