// The checker: from the statements of a spec (includes expanded) to a CheckedSpec, with every
// error the spec has. Which blocks exist, what they say, whether the model can be resolved.
// Rules that depend on a layer's resolved settings (group divides in-features, rank fits)
// live in the plan stage, which is where those settings are known.
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { error, warning, type Diagnostic, type SourceSpan } from '../diagnostics/diagnostic.ts';
import type { LoadedSpec } from '../syntax/load.ts';
import type { Statement } from '../syntax/ast.ts';
import { checkBody } from './check-settings.ts';
import { checkModel } from './check-model.ts';
import { checkTokenizer } from './check-tokenizer.ts';
import { checkSelector } from './check-override.ts';
import type { CheckedOverride, CheckedSetting, CheckedSettings, CheckedSpec, CheckedTarget } from './checked-spec.ts';
import { BLOCK_SCHEMAS, OVERRIDE_SCHEMA, TARGET_SCHEMAS, type Schema } from './schema.ts';
import { didYouMean, oneOf } from '../diagnostics/suggest.ts';

export interface CheckResult {
  /**
   * Present whenever the spec is whole enough to plan — even with errors elsewhere, so the
   * plan's own checks can report in the same run. Settings that failed their checks are absent.
   */
  readonly spec?: CheckedSpec;
  readonly diagnostics: Diagnostic[];
}

const MAX_NAME_LENGTH = 64;

function where(span: SourceSpan, here: SourceSpan): string {
  return span.file === here.file ? `line ${span.line}` : `${span.file}:${span.line}`;
}

/** The header of an override as the user wrote it, from its source text. */
function headerText(statement: Extract<Statement, { kind: 'override' }>, sources: ReadonlyMap<string, string>): string {
  const text = sources.get(statement.span.file) ?? '';
  return text.slice(statement.span.offset, statement.body.span.offset).trim().replace(/\s+/g, ' ');
}

/**
 * Paths in a spec are relative to the file that holds them; checked settings hold them relative
 * to the entry spec's folder, where the plan keeps them and every verb resolves them. So a path
 * written in an included file in another folder is rewritten here (absolute ones stay).
 */
function rebasePaths(settings: Map<string, CheckedSetting>, schema: Schema, entry: string): Map<string, CheckedSetting> {
  for (const [key, setting] of settings) {
    const written = String(setting.value);
    const folder = dirname(setting.valueSpan.file);
    if (schema[key]?.type.kind !== 'path' || isAbsolute(written) || resolve(folder) === resolve(dirname(entry))) continue;
    settings.set(key, { ...setting, value: relative(dirname(entry), join(folder, written)) });
  }
  return settings;
}

/** A missing data file is only a warning at compile time. */
function warnIfMissing(settings: CheckedSettings, keys: readonly string[], purpose: string, entry: string, out: Diagnostic[]): void {
  for (const key of keys) {
    const setting = settings.get(key);
    if (!setting) continue;
    const path = resolve(dirname(entry), String(setting.value));
    if (!existsSync(path)) out.push(warning(setting.valueSpan, `${key} '${String(setting.value)}' does not exist (yet): ${purpose} will need it`));
  }
}

export function checkSpec(loaded: LoadedSpec): CheckResult {
  const out: Diagnostic[] = [];
  const sources = new Map(loaded.files.map((f) => [f.path, f.text]));
  const firstOf = new Map<string, Statement>();
  let name: Extract<Statement, { kind: 'spec' }> | undefined;

  const once = (key: string, statement: Statement, what: string): boolean => {
    const previous = firstOf.get(key);
    if (previous) {
      out.push(error(statement.span.length > 0 ? { ...statement.span, length: what.length } : statement.span,
        `a spec has one ${what}; the first is at ${where(previous.span, statement.span)}`,
        key === 'spec' ? undefined : 'per-layer changes go in an `override` block'));
      return false;
    }
    firstOf.set(key, statement);
    return true;
  };

  // `written`: every key the block sets, right or wrong; a wrong value is reported where it is
  // written, so a missing-key error would only repeat it.
  const blocks = new Map<string, { settings: CheckedSettings; written: ReadonlySet<string>; span: SourceSpan }>();
  const overrideStatements: Extract<Statement, { kind: 'override' }>[] = [];
  const targets: CheckedTarget[] = [];

  for (const statement of loaded.statements) {
    switch (statement.kind) {
      case 'spec':
        if (!once('spec', statement, 'spec name')) break;
        name = statement;
        if (statement.name.length > MAX_NAME_LENGTH) {
          out.push(error(statement.nameSpan, `the spec name is ${statement.name.length} characters long; at most ${MAX_NAME_LENGTH}`));
        }
        break;
      case 'block': {
        if (!once(statement.block, statement, `${statement.block} block`)) break;
        const schema = BLOCK_SCHEMAS[statement.block]!;
        const settings = rebasePaths(checkBody(statement.body, schema, `the ${statement.block} block`, out), schema, loaded.entry);
        blocks.set(statement.block, { settings, written: new Set(statement.body.settings.map((s) => s.key)), span: statement.span });
        break;
      }
      case 'target': {
        const schema = TARGET_SCHEMAS[statement.target];
        if (!schema) {
          const known = Object.keys(TARGET_SCHEMAS);
          out.push(error(statement.targetSpan, `unknown target '${statement.target}': expected ${oneOf(known)}`, didYouMean(statement.target, known)));
          break;
        }
        if (!once(`target ${statement.target}`, statement, `target ${statement.target}`)) break;
        const settings = rebasePaths(checkBody(statement.body, schema, `target ${statement.target}`, out), schema, loaded.entry);
        targets.push({ kind: statement.target as CheckedTarget['kind'], settings, span: statement.span });
        break;
      }
      case 'override':
        overrideStatements.push(statement);
        break;
      case 'include':
        break; // expanded by the loader
    }
  }

  // A file with syntax errors may have lost the very block we would call missing.
  const complete = loaded.filesWithSyntaxErrors.size === 0;
  const entrySpan: SourceSpan = { file: loaded.entry, line: 1, col: 1, offset: 0, length: 1 };
  if (!name && complete) out.push(error(entrySpan, 'the spec has no name', 'start the file with `spec my_model`: the name of generated/<name>/'));
  const model = blocks.get('model');
  const quant = blocks.get('quant');
  if (!model && complete) out.push(error(entrySpan, 'the spec has no model block', 'add `model { preset = llama2_7b }` or `model { checkpoint = "…" }`'));
  if (!quant && complete) out.push(error(entrySpan, 'the spec has no quant block', 'add `quant { bits = 4  group = 32 }`'));
  for (const key of ['bits', 'group']) {
    if (quant && !quant.written.has(key) && !loaded.filesWithSyntaxErrors.has(quant.span.file)) {
      out.push(error({ ...quant.span, length: 5 }, `the quant block must set ${key}`, key === 'bits' ? 'bits = 4' : 'group = 32 (the paper\'s choice)'));
    }
  }
  const adapter = blocks.get('adapter');
  if (adapter && !adapter.written.has('rank') && !loaded.filesWithSyntaxErrors.has(adapter.span.file)) {
    out.push(error({ ...adapter.span, length: 7 }, 'the adapter block must set rank', 'rank = 64 (the paper\'s choice)'));
  }

  const checkedModel = model ? checkModel(model.settings, model.span, loaded.entry, out) : undefined;
  if (checkedModel) checkTokenizer(checkedModel, loaded.entry, out);

  const overrides: CheckedOverride[] = [];
  for (const statement of overrideStatements) {
    const settings = rebasePaths(checkBody(statement.body, OVERRIDE_SCHEMA, `an override`, out), OVERRIDE_SCHEMA, loaded.entry);
    if (statement.body.settings.length === 0) out.push(warning(statement.span, 'this override sets nothing'));
    if (!checkedModel) continue;
    const selector = checkSelector(statement.selectors, checkedModel.architecture.layers, out);
    if (selector) overrides.push({ selector, settings, span: statement.span, header: headerText(statement, sources) });
  }
  checkOverrideConflicts(overrides, out);

  const train = blocks.get('train');
  if (train) {
    warnIfMissing(train.settings, ['data', 'eval_data'], 'qalc train', loaded.entry, out);
    const optimizer = train.settings.get('optimizer');
    if (optimizer && optimizer.value !== 'adamw') out.push(error(optimizer.valueSpan, `optimizer = ${String(optimizer.value)}: qalc train has AdamW only`, 'optimizer = adamw (the default)'));
    const seqLen = train.settings.get('seq_len');
    if (seqLen && checkedModel && (seqLen.value as number) > checkedModel.architecture.context) {
      out.push(error(seqLen.valueSpan, `seq_len = ${String(seqLen.value)} is longer than the model's context of ${checkedModel.architecture.context}`));
    }
    const recompute = train.settings.get('recompute');
    if (recompute && checkedModel && typeof recompute.value === 'number' && recompute.value > checkedModel.architecture.layers) {
      const layers = checkedModel.architecture.layers;
      out.push(error(recompute.valueSpan, `recompute = ${recompute.value} blocks, but the model has ${layers}`, `recompute = blocks (every block) or a number up to ${layers}`));
    }
  }
  if (model) warnIfMissing(model.settings, ['tokenizer'], 'training and generation', loaded.entry, out);
  if (quant) warnIfMissing(quant.settings, ['calibration'], 'GPTQ quantization', loaded.entry, out);
  for (const o of overrides) warnIfMissing(o.settings, ['calibration'], 'GPTQ quantization', loaded.entry, out);

  const plannable = name && checkedModel && quant && quant.settings.has('bits') && quant.settings.has('group') && (!adapter || adapter.settings.has('rank'));
  if (!plannable) return { diagnostics: out };
  const exportBlock = blocks.get('export');
  return {
    diagnostics: out,
    spec: {
      name: name!.name,
      nameSpan: name!.nameSpan,
      entryFile: loaded.entry,
      model: checkedModel!,
      quant: quant!.settings,
      quantSpan: quant!.span,
      ...(adapter ? { adapter } : {}),
      overrides,
      targets,
      ...(train ? { train: train.settings } : {}),
      ...(exportBlock ? { export: exportBlock.settings } : {}),
    },
  };
}

/**
 * Overrides apply in source order and the later one wins. When two overrides select exactly
 * the same layers and set the same key to different values, the first can never take effect:
 * that is almost certainly a mistake, so it is an error rather than a silent precedence.
 */
function checkOverrideConflicts(overrides: readonly CheckedOverride[], out: Diagnostic[]): void {
  const bySelector = new Map<string, CheckedOverride[]>();
  for (const o of overrides) {
    const key = JSON.stringify([o.selector.layers ?? 'all', [...(o.selector.projections ?? ['*'])].sort()]);
    const group = bySelector.get(key) ?? [];
    group.push(o);
    bySelector.set(key, group);
  }
  for (const group of bySelector.values()) {
    // Each setting is compared with the latest earlier one of the same key: n overrides give
    // at most n messages, however many repeat each other.
    const latest = new Map<string, CheckedSetting>();
    for (const o of group) {
      for (const [key, later] of o.settings) {
        const earlier = latest.get(key);
        latest.set(key, later);
        if (!earlier) continue;
        const same = JSON.stringify(earlier.value) === JSON.stringify(later.value);
        const at = where(earlier.span, later.span);
        if (same) out.push(warning(later.span, `${key} is already set to the same value for the same layers at ${at}`));
        else out.push(error(later.span, `conflicting overrides: ${key} = ${JSON.stringify(later.value)} here, ${key} = ${JSON.stringify(earlier.value)} for the same layers at ${at}`, 'keep one of them'));
      }
    }
  }
}
