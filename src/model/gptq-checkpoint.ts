// Reads a GPTQ v1 checkpoint (AutoGPTQ / GPTQModel / transformers): a Hugging Face LLaMA
// directory whose quantized projections are stored as
//
//   <prefix>.qweight  I32 [K·b/32, N]   codes packed along the input (src/quant/gptq-pack.ts)
//   <prefix>.qzeros   I32 [L, N·b/32]   zeros packed along the output, stored z − 1 (v1) or z (v2)
//   <prefix>.scales   F16 [L, N]
//   <prefix>.g_idx    I32 [K]           ⌊i/g⌋ (desc_act false; permuted groups are refused)
//
// with the quantization in quantize_config.json or config.json's quantization_config, and every
// other tensor (embeddings, norms, lm_head, projections left unquantized) as in any Hugging Face
// directory. The codes, scales and zeros become the frozen base of a QA-LoRA fine-tune as they
// are — nothing is quantized again. Columns of q and k (their output rows) are moved from
// Hugging Face's rotary order to llama2.c's, like the rows of a float weight.
import type { Architecture } from './architecture.ts';
import { readGptqQuantization, readHfArchitecture, type GptqQuantization } from './hf-config.ts';
import { readDenseProjection, readHfLayout, type HfTensors } from './hf-checkpoint.ts';
import { CheckpointError, type Llama2cCheckpoint } from './llama2c-checkpoint.ts';
import { hfRowOrder, inversePermutation, reorderOutputColumns } from './rope-permutation.ts';
import { dequantizeOutIn } from '../quant/dequantize.ts';
import { packedWords, unpackQweight, unpackQzeros } from '../quant/gptq-pack.ts';
import { SUPPORTED_BITS, type QuantizedWeight } from '../quant/quantized-weight.ts';

export interface GptqCheckpoint extends Llama2cCheckpoint {
  /** Every quantized projection by qalc's name (`layers.0.q`), input-major, llama2.c rotary order. */
  readonly quantized: ReadonlyMap<string, QuantizedWeight>;
  readonly quantization: GptqQuantization;
}

/** llama2.c tensor name → qalc's projection name. */
const PROJECTION_OF: Readonly<Record<string, string>> = { wq: 'q', wk: 'k', wv: 'v', wo: 'o', w1: 'gate', w2: 'down', w3: 'up' };

export function readGptqCheckpoint(dir: string): GptqCheckpoint {
  const arch = readHfArchitecture(dir);
  const quantization = readGptqQuantization(dir);
  if (quantization.actOrder) {
    throw new CheckpointError(quantization.path, 'desc_act: true: the checkpoint\'s groups are permuted by g_idx, so QA-LoRA\'s pooling of consecutive inputs does not match them; use a GPTQ checkpoint made with desc_act false');
  }
  const quantized = new Map<string, QuantizedWeight>();
  const listed = (prefix: string) => !quantization.modules || quantization.modules.some((m) => prefix.endsWith(`.${m}`));
  const checkpoint = readHfLayout(dir, arch, (tensors, prefix, name, shape) => {
    const stored = tensors.has(`${prefix}.qweight`);
    if (!stored) {
      if (quantization.modules && listed(prefix)) throw new CheckpointError(tensors.dir, `missing tensor ${prefix}.qweight: ${quantization.path} lists ${prefix.split('.').slice(-2).join('.')} among the quantized modules`);
      if (!quantization.modules && !tensors.has(`${prefix}.weight`)) throw new CheckpointError(tensors.dir, `missing tensor ${prefix}.qweight (qalc's ${name})`);
      return readDenseProjection(tensors, prefix, name, shape, arch);
    }
    if (!listed(prefix)) throw new CheckpointError(tensors.fileOf(`${prefix}.qweight`), `tensor ${prefix}.qweight: ${quantization.path}'s modules_in_block_to_quantize does not list this module`);
    const weight = inLlama2cOrder(readQuantizedProjection(tensors, prefix, shape, quantization), name, arch);
    const [layer, llama2cName] = name.split('.').slice(1);
    quantized.set(`layers.${layer}.${PROJECTION_OF[llama2cName!]}`, weight);
    return dequantizeOutIn(weight);
  });
  return { ...checkpoint, quantized, quantization };
}

/** One projection's codes, scales and zeros, validated against config.json's shape [out, in]. */
function readQuantizedProjection(tensors: HfTensors, prefix: string, [N, K]: [number, number], quantization: GptqQuantization): QuantizedWeight {
  const { bits, path } = quantization;
  const groupSize = quantization.groupSize === -1 ? K : quantization.groupSize;
  const qweightName = `${prefix}.qweight`;
  const file = tensors.fileOf(qweightName);
  if (K % groupSize !== 0) throw new CheckpointError(path, `group_size ${groupSize} does not divide the in-features ${K} of ${prefix}`);
  const groups = K / groupSize;
  const stored = tensors.shapeOf(qweightName)!;
  const wordRows = packedWords(K, bits);
  if (stored.length === 2 && stored[1] === N && stored[0] !== wordRows) {
    const other = SUPPORTED_BITS.find((b) => packedWords(K, b) === stored[0]);
    throw new CheckpointError(file, `tensor ${qweightName} is [${stored.join(', ')}]: ${bits}-bit codes of ${K} inputs take [${wordRows}, ${N}]` +
      (other ? `; its shape is that of ${other}-bit codes, but ${path} says bits = ${bits}` : ''));
  }
  const qweight = tensors.readInt32(qweightName, [wordRows, N]);
  const qzeros = tensors.readInt32(`${prefix}.qzeros`, [groups, packedWords(N, bits)]);
  const scales = Float64Array.from(tensors.readFloat32(`${prefix}.scales`, [groups, N]));
  const gIdxName = `${prefix}.g_idx`;
  if (tensors.has(gIdxName)) {
    const gIdx = tensors.readInt32(gIdxName, [K]);
    for (let i = 0; i < K; i++) {
      if (gIdx[i] !== Math.floor(i / groupSize)) {
        throw new CheckpointError(tensors.fileOf(gIdxName), `tensor ${gIdxName}[${i}] is ${gIdx[i]}, expected ⌊${i}/${groupSize}⌋ = ${Math.floor(i / groupSize)}: its groups are not consecutive inputs (desc_act, or a damaged file)`);
      }
    }
  }
  const zeros = unpackQzeros(qzeros, groups, N, bits, quantization.checkpointFormat);
  return { inFeatures: K, outFeatures: N, groupSize, bits, q: unpackQweight(qweight, K, N, bits), scales, zeros };
}

/** q and k: output columns from Hugging Face's rotary order to llama2.c's; others as they are. */
function inLlama2cOrder(weight: QuantizedWeight, name: string, arch: Architecture): QuantizedWeight {
  const heads = name.endsWith('.wq') ? arch.heads : name.endsWith('.wk') ? arch.kvHeads : 0;
  if (heads === 0) return weight;
  return reorderOutputColumns(weight, inversePermutation(hfRowOrder(weight.outFeatures, heads)));
}

