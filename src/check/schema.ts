// What each block of a spec may say: every key, its type, its range and its default.
// The checker validates against this table and the language reference documents it, so a
// key exists in exactly one place.

export type FieldType =
  | { readonly kind: 'int'; readonly min?: number; readonly max?: number; readonly allowed?: readonly number[] }
  | { readonly kind: 'number'; readonly min?: number; readonly max?: number; readonly minExclusive?: boolean; readonly maxExclusive?: boolean }
  | { readonly kind: 'bool' }
  | { readonly kind: 'enum'; readonly values: readonly string[] }
  | { readonly kind: 'enumList'; readonly values: readonly string[] }
  | { readonly kind: 'path' }
  /** A bare name or a quoted one, checked by the block's own rules (preset names). */
  | { readonly kind: 'word' }
  /** One of the names, or an integer (a count the names abbreviate: `recompute = blocks` or `= 8`). */
  | { readonly kind: 'enumOrInt'; readonly values: readonly string[]; readonly min?: number };

export interface Field {
  readonly type: FieldType;
  /** Shown in the reference; `undefined` means "no default: absent unless written". */
  readonly default?: string;
  readonly doc: string;
}

export type Schema = Readonly<Record<string, Field>>;

const int = (min?: number, max?: number): FieldType => ({ kind: 'int', ...(min === undefined ? {} : { min }), ...(max === undefined ? {} : { max }) });
const enumOf = (...values: string[]): FieldType => ({ kind: 'enum', values });

export const BITS = [2, 3, 4, 8] as const;
export const PROJECTIONS = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;
export type Projection = (typeof PROJECTIONS)[number];
/** Linear layers outside the blocks that can be asked for by `override proj lm_head`. */
export const OUTSIDE_BLOCKS = ['lm_head'] as const;
/** Parts of the model that are not linear layers: named so the checker can say why not. */
export const NOT_LINEAR = ['embed', 'embeddings', 'norm', 'rms_att', 'rms_ffn', 'rms_final'] as const;
export const FLOAT_DTYPES = ['fp16', 'bf16', 'fp32'] as const;
export const CUDA_ARCHS = ['sm_80', 'sm_90a'] as const;
/** `recompute = none | blocks | mlp | projections`, or a number of blocks (src/train/recompute.ts). */
export const RECOMPUTE_WORDS = ['none', 'blocks', 'mlp', 'projections'] as const;

export const MODEL_SCHEMA: Schema = {
  preset: { type: { kind: 'word' }, doc: 'a named architecture (see Presets)' },
  checkpoint: { type: { kind: 'path' }, doc: 'where to read shapes (and, for training, weights): a llama2.c `.bin`, a Hugging Face LLaMA directory with `config.json` and safetensors weights, or a GPTQ v1 directory (AutoGPTQ/GPTQModel: its quantized layers are the frozen base as stored)' },
  format: { type: enumOf('llama2c', 'hf', 'gptq'), doc: 'the checkpoint format; inferred from the path when omitted' },
  tokenizer: { type: { kind: 'path' }, doc: 'a Hugging Face `tokenizer.json`, a SentencePiece BPE `.model` or a llama2.c `tokenizer.bin`, for training and generation; by default the `tokenizer.json` (else `tokenizer.model`) of a Hugging Face checkpoint directory. Its vocabulary must be the model\'s' },
  dim: { type: int(1), doc: 'hidden size (d_model)' },
  hidden_dim: { type: int(1), doc: 'MLP intermediate size' },
  layers: { type: int(1), doc: 'number of transformer blocks' },
  heads: { type: int(1), doc: 'attention heads' },
  kv_heads: { type: int(1), doc: 'key/value heads (grouped-query attention); defaults to heads' },
  vocab: { type: int(1), doc: 'vocabulary size' },
  context: { type: int(1), doc: 'maximum sequence length' },
  tied_embeddings: { type: { kind: 'bool' }, default: 'false', doc: 'lm_head shares the token embedding' },
};

export const QUANT_SCHEMA: Schema = {
  bits: { type: { kind: 'int', allowed: BITS }, doc: 'bits per weight: 2, 3, 4 or 8' },
  group: { type: int(1), doc: 'group size: consecutive inputs sharing one scale and zero; must divide in-features (see `pad`)' },
  symmetric: { type: { kind: 'bool' }, default: 'false', doc: 'symmetric quantization as GPTQ\'s sym=True (zero fixed at 2^(b−1)); the paper is asymmetric' },
  scale: { type: enumOf(...FLOAT_DTYPES), default: 'fp16', doc: 'dtype of the group scales: RTN\'s scales are rounded to it, and the model trains with them' },
  zero: { type: enumOf('int', ...FLOAT_DTYPES), default: 'int', doc: 'storage of the zero points: packed integers, or floats (merged models keep fractional zeros)' },
  method: { type: enumOf('rtn', 'gptq'), default: 'rtn', doc: 'round-to-nearest, or GPTQ (Frantar et al.) from calibration activations, at load time, true-sequentially' },
  damp: { type: { kind: 'number', min: 0, max: 1, minExclusive: true }, default: '0.01', doc: 'GPTQ: Hessian damping, a fraction of its mean diagonal' },
  calibration: { type: { kind: 'path' }, doc: 'GPTQ: calibration text (random windows of the train block\'s `seq_len`); the training data when absent' },
  samples: { type: int(1), default: '128', doc: 'GPTQ: calibration windows' },
  act_order: { type: { kind: 'bool' }, default: 'false', doc: 'GPTQ: quantize columns in order of activation size (permutes groups; refused with QA-LoRA)' },
  pad: { type: enumOf('none', 'zero'), default: 'none', doc: 'when the group size does not divide in-features: `zero` pads in-features with zero rows to a multiple of it' },
};

export const ADAPTER_SCHEMA: Schema = {
  kind: { type: enumOf('qalora', 'lora'), default: 'qalora', doc: '`qalora` pools the input per group (the paper); `lora` is plain LoRA, for comparison' },
  rank: { type: int(1), doc: 'adapter rank r; at most min(in-features / group, out-features) for qalora' },
  alpha: { type: { kind: 'number', min: 0, minExclusive: true }, default: '16', doc: 'scaling numerator: the adapter output is multiplied by alpha / rank' },
  dropout: { type: { kind: 'number', min: 0, max: 1, maxExclusive: true }, default: '0', doc: 'dropout on the pooled input' },
  pooling: { type: enumOf('mean', 'sum'), default: 'mean', doc: '`mean` (the authors\' code) or `sum` (the paper\'s Algorithm 1); learning rates do not transfer between them' },
  init: { type: enumOf('kaiming_uniform', 'xavier_uniform', 'gaussian'), default: 'kaiming_uniform', doc: 'initialisation of A (B starts at zero)' },
  dtype: { type: enumOf(...FLOAT_DTYPES), default: 'fp32', doc: 'dtype of the adapter parameters' },
  projections: { type: { kind: 'enumList', values: PROJECTIONS }, default: '[q, k, v, o, gate, up, down]', doc: 'the projections of every block that get an adapter' },
};

/** An override may change any per-layer setting, and switch quantization or the adapter. */
export const OVERRIDE_SCHEMA: Schema = {
  quantize: { type: { kind: 'bool' }, doc: 'quantize this layer (true for block projections, false for lm_head by default)' },
  adapter: { type: enumOf('on', 'off'), doc: 'give this layer an adapter, or take it away' },
  ...QUANT_SCHEMA,
  ...Object.fromEntries(Object.entries(ADAPTER_SCHEMA).filter(([key]) => key !== 'projections')),
};

export const TARGET_SCHEMAS: Readonly<Record<string, Schema>> = {
  cuda: {
    arch: { type: { kind: 'enumList', values: CUDA_ARCHS }, default: '[sm_80, sm_90a]', doc: 'GPU architectures to build for' },
    activation: { type: enumOf('fp16', 'bf16'), default: 'bf16', doc: 'activation dtype (accumulation is always fp32)' },
    tile_m: { type: { kind: 'int', allowed: [16, 32, 64, 128, 256] }, doc: 'tuning: rows of the output tile' },
    tile_n: { type: { kind: 'int', allowed: [16, 32, 64, 128, 256] }, doc: 'tuning: columns of the output tile' },
    tile_k: { type: { kind: 'int', allowed: [16, 32, 64, 128] }, doc: 'tuning: depth of one main-loop step' },
    stages: { type: int(1, 8), doc: 'tuning: shared-memory pipeline stages' },
  },
  wgsl: {
    precision: { type: enumOf('f32', 'f16'), default: 'f32', doc: '`f16` where the adapter offers shader-f16, else falls back to f32 and says so' },
    workgroup_size: { type: { kind: 'int', allowed: [32, 64, 128, 256] }, doc: 'tuning: invocations per workgroup' },
    tile_m: { type: { kind: 'int', allowed: [1, 2, 4, 8, 16, 32, 64] }, doc: 'tuning: rows of the output tile' },
    tile_n: { type: { kind: 'int', allowed: [4, 8, 16, 32, 64, 128] }, doc: 'tuning: columns of the output tile' },
  },
};

export const TRAIN_SCHEMA: Schema = {
  data: { type: { kind: 'path' }, doc: 'training text (documents split at blank lines), `.json`/`.jsonl` rows of `{"text": …}` (a document each), or with `format = alpaca` Alpaca rows (a JSON array or JSON Lines)' },
  format: { type: enumOf('text', 'alpaca'), default: 'text', doc: '`alpaca` uses the instruction template, loss on the response only' },
  eval_data: { type: { kind: 'path' }, doc: 'held-out data; by default the last `eval_fraction` of `data`' },
  eval_fraction: { type: { kind: 'number', min: 0, max: 1, maxExclusive: true }, default: '0.05', doc: 'share of `data` held out when there is no `eval_data`' },
  seq_len: { type: int(1), default: '256', doc: 'tokens per sequence; at most the model\'s context' },
  batch: { type: int(1), default: '8', doc: 'sequences per step' },
  grad_accum: { type: int(1), default: '1', doc: 'steps of gradient accumulation' },
  steps: { type: int(1), default: '1000', doc: 'optimizer steps' },
  optimizer: { type: enumOf('adamw', 'sgd'), default: 'adamw', doc: 'optimizer' },
  lr: { type: { kind: 'number', min: 0, minExclusive: true }, default: '2e-4', doc: 'peak learning rate' },
  weight_decay: { type: { kind: 'number', min: 0 }, default: '0', doc: 'decoupled weight decay' },
  beta1: { type: { kind: 'number', min: 0, max: 1, maxExclusive: true }, default: '0.9', doc: 'AdamW β1' },
  beta2: { type: { kind: 'number', min: 0, max: 1, maxExclusive: true }, default: '0.999', doc: 'AdamW β2' },
  eps: { type: { kind: 'number', min: 0, minExclusive: true }, default: '1e-8', doc: 'AdamW ε' },
  schedule: { type: enumOf('constant', 'linear', 'cosine'), default: 'constant', doc: 'learning-rate schedule after warm-up' },
  warmup: { type: int(0), default: '0', doc: 'warm-up steps' },
  max_grad_norm: { type: { kind: 'number', min: 0, minExclusive: true }, default: '0.3', doc: 'gradient clipping (the paper: 0.3)' },
  seed: { type: int(0), default: '0', doc: 'seed for initialisation, data order and dropout' },
  eval_every: { type: int(1), default: '100', doc: 'steps between evaluations' },
  checkpoint_every: { type: int(1), default: '100', doc: 'steps between checkpoints' },
  backend: { type: enumOf('cpu', 'webgpu', 'cuda'), default: 'cpu', doc: 'where `qalc train` runs unless told otherwise' },
  recompute: {
    type: { kind: 'enumOrInt', values: RECOMPUTE_WORDS, min: 0 }, default: 'none',
    doc: 'activation recomputation (checkpointing), for long sequences: `none` keeps every block\'s activations for the backward; `blocks` keeps only the residual stream entering each block and runs the block\'s forward again just before its backward, into one set of activations all such blocks share (one more forward of the blocks a step); an integer N does that for the first N blocks only, at most the model\'s `layers` (0 is `none`); `mlp` keeps each block\'s normed MLP input instead of the gate and up projections\' outputs and runs those two again just before the block\'s backward (at the LLaMA-2-7B shape 70 MiB a block less for about a sixth of a block\'s forward); `projections` does that and also keeps each block\'s normed attention input instead of q, k and v, running those three and RoPE again before the attention backward (32 MiB a block less again, for about another sixth). Losses and gradients are the same bit for bit; a run may be resumed with another value',
  },
};

export const EXPORT_SCHEMA: Schema = {
  formats: { type: { kind: 'enumList', values: ['safetensors', 'qalc', 'gguf', 'gptq', 'gptq_v2', 'peft_qalora', 'peft_lora'] }, default: '[safetensors]', doc: 'formats `qalc merge` writes after merging: qalc\'s own safetensors (`safetensors` or `qalc`: float zeros, lossless), `gguf` (llama.cpp, Q4_1), `gptq` (GPTQ v1, rounded zeros, the cost reported) or `gptq_v2` (GPTQModel\'s zeros), `peft_qalora` and `peft_lora` (the adapters alone, for PEFT); each as `qalc export --format` writes it' },
  out: { type: { kind: 'path' }, doc: 'output directory (default: the training run\'s directory)' },
};

export const BLOCK_SCHEMAS: Readonly<Record<string, Schema>> = {
  model: MODEL_SCHEMA,
  quant: QUANT_SCHEMA,
  adapter: ADAPTER_SCHEMA,
  train: TRAIN_SCHEMA,
  export: EXPORT_SCHEMA,
};
