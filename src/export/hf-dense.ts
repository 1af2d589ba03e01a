// A merged (or unmerged) INT-N model dequantized into a plain Hugging Face LLaMA folder:
// config.json and model.safetensors in F32, Hugging Face names and rotary order. It is what a
// PEFT adapter exported by qalc applies to (the quantized base, dequantized), and what the
// device check loads with transformers; the values are exactly qalc's float32 weights.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { headDim } from '../model/architecture.ts';
import { permuteToHf, rotaryHeads } from '../model/rope-permutation.ts';
import { PROJECTIONS } from '../train/qalora-spec.ts';
import { denseWeight, type MergedModel } from './merged-model.ts';
import { encodeSafetensors, type NamedTensor } from './safetensors.ts';


export function hfConfig(model: MergedModel): Record<string, unknown> {
  const { arch } = model;
  return {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', attention_bias: false, attention_dropout: 0.0, bos_token_id: 1, eos_token_id: 2,
    head_dim: headDim(arch), hidden_act: 'silu', hidden_size: arch.dim, initializer_range: 0.02, intermediate_size: arch.hiddenDim,
    max_position_embeddings: arch.context, mlp_bias: false, num_attention_heads: arch.heads, num_hidden_layers: arch.layers,
    num_key_value_heads: arch.kvHeads, pretraining_tp: 1, rms_norm_eps: arch.rmsNormEps, rope_theta: arch.ropeTheta,
    rope_parameters: { rope_theta: arch.ropeTheta, rope_type: 'default' }, tie_word_embeddings: arch.tiedEmbeddings,
    torch_dtype: 'float32', dtype: 'float32', use_cache: true, vocab_size: arch.vocab,
  };
}

/** Writes config.json and model.safetensors into `dir`. */
export function writeHfDense(dir: string, model: MergedModel): string[] {
  const { arch } = model;
  const tensors: NamedTensor[] = [{ name: 'model.embed_tokens.weight', shape: [arch.vocab, arch.dim], data: model.tokenEmbedding.data }];
  model.blocks.forEach((block, l) => {
    tensors.push({ name: `model.layers.${l}.input_layernorm.weight`, shape: [arch.dim], data: block.rmsAtt.data });
    tensors.push({ name: `model.layers.${l}.post_attention_layernorm.weight`, shape: [arch.dim], data: block.rmsFfn.data });
    for (const p of PROJECTIONS) {
      const projection = block.projections[p];
      const [N, K] = projection.kind === 'dense' ? projection.weight.shape as [number, number] : [projection.weight.outFeatures, projection.inFeatures];
      const heads = rotaryHeads(arch, p);
      const data = heads === undefined ? denseWeight(projection) : permuteToHf(denseWeight(projection), heads, K);
      tensors.push({ name: `${projection.prefix}.weight`, shape: [N, K], data });
    }
  });
  tensors.push({ name: 'model.norm.weight', shape: [arch.dim], data: model.rmsFinal.data });
  if (!arch.tiedEmbeddings) tensors.push({ name: 'lm_head.weight', shape: [arch.vocab, arch.dim], data: model.classifier.data });
  writeFileSync(join(dir, 'model.safetensors'), encodeSafetensors(tensors, { format: 'pt' }));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(hfConfig(model), null, 2) + '\n');
  return ['config.json', 'model.safetensors'];
}
