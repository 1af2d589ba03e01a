// Resolves the model's architecture from its three possible sources — a preset, a checkpoint's
// header, fields written out — and reports every field on which two of them disagree.
import { dirname, resolve } from 'node:path';
import { error, type Diagnostic, type SourceSpan } from '../diagnostics/diagnostic.ts';
import { didYouMean } from '../diagnostics/suggest.ts';
import { LLAMA_ROPE_AND_NORM, oddHeadSize, type Architecture } from '../model/architecture.ts';
import { findPreset, PRESET_NAMES, PRESETS } from '../model/presets.ts';
import { readCheckpointShapes, type CheckpointFormat, type CheckpointShapes } from '../model/read-architecture.ts';
import type { CheckedModel, CheckedSettings } from './checked-spec.ts';

/** Spec keys for the architecture's fields. */
const FIELD_KEYS: ReadonlyArray<[keyof Architecture, string]> = [
  ['dim', 'dim'], ['hiddenDim', 'hidden_dim'], ['layers', 'layers'], ['heads', 'heads'],
  ['kvHeads', 'kv_heads'], ['vocab', 'vocab'], ['context', 'context'], ['tiedEmbeddings', 'tied_embeddings'],
];

export function checkModel(settings: CheckedSettings, span: SourceSpan, specFile: string, out: Diagnostic[]): CheckedModel | undefined {
  let fromPreset: Architecture | undefined;
  let presetName: string | undefined;
  const preset = settings.get('preset');
  if (preset) {
    presetName = findPreset(String(preset.value));
    if (presetName) fromPreset = PRESETS[presetName];
    else out.push(error(preset.valueSpan, `unknown preset '${String(preset.value)}'`, didYouMean(String(preset.value), PRESET_NAMES) ?? `presets: ${PRESET_NAMES.join(', ')}`));
  }

  let fromCheckpoint: CheckpointShapes | undefined;
  let checkpointInfo: CheckedModel['checkpoint'];
  const checkpoint = settings.get('checkpoint');
  if (checkpoint) {
    const written = String(checkpoint.value);
    const absolutePath = resolve(dirname(specFile), written);
    const format = settings.get('format')?.value as CheckpointFormat | undefined;
    try {
      fromCheckpoint = readCheckpointShapes(absolutePath, format);
      checkpointInfo = { path: written, absolutePath, format: fromCheckpoint.format, ...(fromCheckpoint.gptq ? { gptq: fromCheckpoint.gptq } : {}) };
    } catch (e) {
      const reason = (e as Error).message.replace(`${absolutePath}: `, '').replace(absolutePath, written);
      out.push(error(checkpoint.valueSpan, `cannot read checkpoint '${written}': ${reason}`,
        'a relative path is relative to the file it is written in; see the README for where to get the models'));
      return undefined;
    }
  }

  const written: Partial<Record<keyof Architecture, number | boolean>> = {};
  for (const [field, key] of FIELD_KEYS) {
    const setting = settings.get(key);
    if (setting) written[field] = setting.value as number | boolean;
  }

  // A checkpoint is the truth; a preset is next; written fields must agree with both.
  const base = fromCheckpoint?.architecture ?? fromPreset;
  const baseName = fromCheckpoint ? `the checkpoint` : `preset ${presetName}`;
  if (fromCheckpoint && fromPreset) {
    for (const [field, key] of FIELD_KEYS) {
      if (fromCheckpoint.architecture[field] !== fromPreset[field]) {
        out.push(error(preset!.valueSpan, `preset ${presetName} has ${key} = ${fromPreset[field]} but the checkpoint has ${fromCheckpoint.architecture[field]}`,
          'drop the preset: the checkpoint already says the shapes'));
        break;
      }
    }
  }
  if (base) {
    for (const [field, key] of FIELD_KEYS) {
      const value = written[field];
      if (value !== undefined && value !== base[field]) {
        out.push(error(settings.get(key)!.valueSpan, `${key} = ${value} disagrees with ${baseName}, which has ${key} = ${base[field]}`,
          `remove ${key} or make it ${base[field]}`));
      }
    }
    const odd = oddHeadSize(base);
    if (odd) {
      // Every verb that runs the model would fail on it; the spec is where to say so.
      out.push(fromCheckpoint
        ? error(checkpoint!.valueSpan, `the checkpoint's ${odd}`, 'qalc runs LLaMA models, whose heads have an even size')
        : error(preset!.valueSpan, `preset ${presetName}: the ${odd}`));
      return undefined;
    }
    // Disagreements are reported; later checks still run against the authoritative shapes.
    return {
      architecture: base,
      source: fromCheckpoint ? 'checkpoint' : 'preset',
      ...(presetName ? { preset: presetName } : {}),
      ...(checkpointInfo ? { checkpoint: checkpointInfo } : {}),
      settings,
      span,
    };
  }

  if (preset) return undefined; // an unknown preset, already reported
  const missing = FIELD_KEYS.filter(([field, key]) => written[field] === undefined && key !== 'kv_heads' && key !== 'tied_embeddings').map(([, key]) => key);
  if (missing.length > 0) {
    out.push(error(span, `the model block needs a preset, a checkpoint, or the whole architecture (missing: ${missing.join(', ')})`,
      'for example `preset = llama2_7b` or `checkpoint = "path/to/model.bin"`'));
    return undefined;
  }
  const architecture: Architecture = {
    dim: written.dim as number,
    hiddenDim: written.hiddenDim as number,
    layers: written.layers as number,
    heads: written.heads as number,
    kvHeads: (written.kvHeads as number | undefined) ?? (written.heads as number),
    vocab: written.vocab as number,
    context: written.context as number,
    tiedEmbeddings: (written.tiedEmbeddings as boolean | undefined) ?? false,
    ...LLAMA_ROPE_AND_NORM,
  };
  if (architecture.dim % architecture.heads !== 0) {
    out.push(error(settings.get('heads')!.valueSpan, `heads = ${architecture.heads} does not divide dim = ${architecture.dim}`));
    return undefined;
  }
  const odd = oddHeadSize(architecture);
  if (odd) {
    out.push(error(settings.get('heads')!.valueSpan, `the ${odd}`, 'choose heads so that dim / heads is even'));
    return undefined;
  }
  if (architecture.heads % architecture.kvHeads !== 0) {
    out.push(error(settings.get('kv_heads')!.valueSpan, `kv_heads = ${architecture.kvHeads} does not divide heads = ${architecture.heads}`));
    return undefined;
  }
  return { architecture, source: 'written', settings, span };
}
