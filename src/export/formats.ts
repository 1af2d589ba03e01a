// The export formats, one entry each: what it holds, what is exact in it, and how it is written
// into a (temporary) folder. `qalc export --format NAME` and the spec's `export { formats = … }`
// both look formats up here; adding one is adding an entry.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LlamaForward } from '../model/llama-forward.ts';
import { parseTokenizer } from '../model/read-tokenizer.ts';
import { writeGguf } from './gguf/write-gguf.ts';
import { writeHfDense } from './hf-dense.ts';
import { denseCheckpointOf, writeMergedModel, type MergedModel } from './merged-model.ts';
import { writePeftAdapter, type AdapterSet, type PeftVariant } from './peft-adapter.ts';

/** What an export is written from. */
export interface ExportSource {
  /** What was exported, for export.json and messages. */
  readonly description: string;
  readonly merged: MergedModel;
  /** The run's adapters and the quantized base they apply to; absent for a merged model. */
  readonly adapters?: AdapterSet;
  readonly base?: MergedModel;
}

export interface ExportOptions {
  /** Refuse layers a format cannot hold exactly instead of writing them in a wider type. */
  readonly strict?: boolean;
  /** Adapter formats: also write the dequantized base they apply to, and qalc's logits. */
  readonly withBase?: boolean;
  /** gguf: every projection dequantized F32 (exact, not compact). */
  readonly dequantize?: boolean;
}

export interface FormatWritten {
  readonly files: readonly string[];
  readonly notices: readonly string[];
  /** Measured numbers, written into export.json. */
  readonly report?: Readonly<Record<string, unknown>>;
}

export interface ExportFormat {
  /** `--format` name. */
  readonly name: string;
  /** The name in a spec's `export { formats = [...] }` (identifiers have no hyphen). */
  readonly specNames: readonly string[];
  readonly summary: string;
  /** 'merged': written from the merged model; 'adapters': needs the run's adapters. */
  readonly needs: 'merged' | 'adapters';
  /** Why it cannot be written yet, if so: refused before any work. */
  readonly unavailable?: string;
  readonly write: (dir: string, source: ExportSource, options: ExportOptions) => FormatWritten;
}

export class ExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportError';
  }
}

/** The prompt the reference logits are computed on, tokenized by the model's own tokenizer. */
export const REFERENCE_PROMPT = 'Once upon a time';

/** qalc's logits of the merged model at every position of the prompt: what PEFT must reproduce. */
export function referenceLogits(merged: MergedModel): { prompt: string; tokens: number[]; logits: number[][] } {
  const tokens = merged.tokenizer ? parseTokenizer(merged.tokenizer.bytes, merged.arch.vocab, merged.tokenizer.name).encode(REFERENCE_PROMPT) : [1, 2, 3, 4];
  const forward = new LlamaForward(denseCheckpointOf(merged));
  const logits = tokens.map((token, pos) => Array.from(forward.forward(token, pos)));
  return { prompt: merged.tokenizer ? REFERENCE_PROMPT : '', tokens, logits };
}

function peft(variant: PeftVariant) {
  return (dir: string, source: ExportSource, options: ExportOptions): FormatWritten => {
    const written = writePeftAdapter(dir, source.adapters!, variant);
    const files = [...written.files];
    if (options.withBase && source.base) {
      mkdirSync(join(dir, 'base'));
      files.push(...writeHfDense(join(dir, 'base'), source.base).map((f) => `base/${f}`));
      writeFileSync(join(dir, 'qalc-logits.json'), JSON.stringify({ what: `${source.description}: qalc's merged model (float32), every position of the prompt`, ...referenceLogits(source.merged) }) + '\n');
      files.push('qalc-logits.json');
    }
    return { files, notices: written.notices };
  };
}

export const EXPORT_FORMATS: readonly ExportFormat[] = [
  {
    name: 'qalc', specNames: ['qalc', 'safetensors'], needs: 'merged',
    summary: 'qalc\'s own INT-N safetensors: packed codes, scales, the merged float zeros, architecture, tokenizer and plan (lossless; eval and generate read it)',
    write: (dir, source) => {
      writeMergedModel(join(dir, 'model.safetensors'), source.merged);
      return { files: ['model.safetensors'], notices: [] };
    },
  },
  {
    name: 'gguf', specNames: ['gguf'], needs: 'merged',
    summary: 'GGUF for llama.cpp: 4-bit layers with groups of 32·n as Q4_1 (exact up to fp16 d and m), other layers dequantized F32 with a notice (or refused with --strict)',
    write: (dir, source, options) => {
      const result = writeGguf(join(dir, 'model.gguf'), source.merged, options);
      const q4 = result.layers.filter((l) => l.type === 'Q4_1');
      const maxAbsWeightError = Math.max(0, ...q4.map((l) => l.maxAbsWeightError));
      return {
        files: ['model.gguf'],
        notices: [...result.notices, `Q4_1 projections: ${q4.length}, largest weight error from fp16 d and m ${maxAbsWeightError.toExponential(2)}`],
        report: { bytes: result.bytes, layers: result.layers, q4_1MaxAbsWeightError: maxAbsWeightError },
      };
    },
  },
  {
    name: 'gptq', specNames: ['gptq'], needs: 'merged',
    unavailable: 'not yet: GPTQ v1 export (integer zeros, rounded and reported) is being written and is not wired into qalc export yet; use --format qalc (lossless) or gguf meanwhile',
    summary: 'GPTQ v1 (AutoGPTQ / transformers / vLLM): merged zeros rounded to integers — not yet',
    write: () => { throw new ExportError('--format gptq: not yet'); },
  },
  {
    name: 'peft-qalora', specNames: ['peft_qalora'], needs: 'adapters',
    summary: 'the adapters alone for PEFT\'s use_qalora (one qalora_group_size; PEFT applies it to GPTQ layers only)',
    write: peft('qalora'),
  },
  {
    name: 'peft-lora', specNames: ['peft_lora'], needs: 'adapters',
    summary: 'the adapters alone as a plain PEFT LoRA (A expanded over its groups): exact on the dequantized base, any PEFT version',
    write: peft('lora'),
  },
];

export function exportFormat(name: string, formats: readonly ExportFormat[] = EXPORT_FORMATS): ExportFormat {
  const format = formats.find((f) => f.name === name || f.specNames.includes(name));
  if (!format) throw new ExportError(`unknown export format '${name}': expected ${formats.map((f) => f.name).join(', ')}`);
  return format;
}
