// The export formats, one entry each: what it holds, what is exact in it, and how it is written
// into a (temporary) folder. `qalc export --format NAME` and the spec's `export { formats = … }`
// both look formats up here; adding one is adding an entry.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LlamaForward } from '../model/llama-forward.ts';
import { parseTokenizer } from '../model/read-tokenizer.ts';
import type { Llama2cCheckpoint } from '../model/llama2c-checkpoint.ts';
import { readGptqCheckpoint } from '../model/gptq-checkpoint.ts';
import type { ZeroFormat } from '../quant/gptq-pack.ts';
import type { HeldOutLoss } from '../train/held-out-loss.ts';
import { writeGguf } from './gguf/write-gguf.ts';
import { writeGptqDirectory } from './gptq-checkpoint.ts';
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
  /** The held-out loss of a model on the run's data, for formats that lose something to say
   *  what it costs; absent for a merged model (no data comes with it). */
  readonly heldOut?: (model: Llama2cCheckpoint) => Promise<HeldOutLoss>;
  /** Files of the Hugging Face or GPTQ checkpoint folder that travel with its weights
   *  (tokenizer.json, tokenizer_config.json, …), for formats that are such folders: name → bytes. */
  readonly checkpointFiles?: ReadonlyMap<string, Uint8Array>;
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
  readonly write: (dir: string, source: ExportSource, options: ExportOptions) => FormatWritten | Promise<FormatWritten>;
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

/** The report written beside a GPTQ export: every layer's rounding error and the held-out loss. */
export const GPTQ_EXPORT_REPORT = 'gptq-export.json';

function gptq(zeros: ZeroFormat) {
  return async (dir: string, source: ExportSource, options: ExportOptions): Promise<FormatWritten> => {
    for (const block of source.merged.blocks) {
      for (const projection of Object.values(block.projections)) {
        if (projection.kind === 'quantized' && projection.weight.inFeatures !== projection.inFeatures) {
          throw new ExportError(`${projection.prefix}: pad = zero stores ${projection.weight.inFeatures} input rows for ${projection.inFeatures} inputs, which a GPTQ checkpoint cannot say: export it as qalc or gguf`);
        }
      }
    }
    const written = writeGptqDirectory(dir, source.merged, { format: zeros, ...(options.strict ? { strict: true } : {}), ...(source.checkpointFiles ? { extraFiles: source.checkpointFiles } : {}) });
    const notices = [...written.notices, ...written.report.layers.map((layer) => `${layer.layer}: ${layer.bits}-bit, group ${layer.group}: weight error max ${layer.maxAbsError.toExponential(3)}, mean ${layer.meanAbsError.toExponential(3)}${layer.clampedGroups ? `, ${layer.clampedGroups} zeros clamped` : ''}`)];
    let heldOut;
    if (source.heldOut) {
      const lossless = await source.heldOut(denseCheckpointOf(source.merged));
      const exported = await source.heldOut(readGptqCheckpoint(dir));
      heldOut = { lossless: lossless.loss, gptq: exported.loss, difference: exported.loss - lossless.loss, tokens: lossless.tokens };
      notices.push(`held-out loss ${heldOut.gptq.toFixed(6)} against the lossless merged model's ${heldOut.lossless.toFixed(6)} (${heldOut.difference >= 0 ? '+' : ''}${heldOut.difference.toExponential(3)}, over ${heldOut.tokens} tokens)`);
    } else {
      notices.push('the held-out loss change is not measured: a merged model brings no data (export from the spec\'s run to measure it)');
    }
    const report = { format: zeros, source: source.description, ...written.report, ...(heldOut ? { heldOut } : {}) };
    writeFileSync(join(dir, GPTQ_EXPORT_REPORT), JSON.stringify(report, null, 2) + '\n');
    return { files: [...written.files, GPTQ_EXPORT_REPORT], notices, report };
  };
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
      const result = writeGguf(join(dir, 'model.gguf'), source.merged, options, source.checkpointFiles);
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
    summary: 'GPTQ v1 (AutoGPTQ / transformers / vLLM): merged zeros rounded to integers and stored as z − 1, fp16 scales; the cost reported per layer and on the held-out loss',
    write: gptq('gptq'),
  },
  {
    name: 'gptq-v2', specNames: ['gptq_v2'], needs: 'merged',
    summary: 'GPTQModel\'s gptq_v2: as gptq, zeros stored as they are (a zero of 0 needs no clamping)',
    write: gptq('gptq_v2'),
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
