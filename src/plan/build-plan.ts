// The plan stage: resolve every linear layer's settings, apply the layer rules, and size it.
import { sep } from 'node:path';
import { error, warning, type Diagnostic } from '../diagnostics/diagnostic.ts';
import type { CheckedSpec } from '../check/checked-spec.ts';
import { EXPORT_SCHEMA, TARGET_SCHEMAS, TRAIN_SCHEMA } from '../check/schema.ts';
import { withDefaults } from './defaults.ts';
import { decideLayer, type LayerProblem } from './layer-rules.ts';
import { describeLayers, linearLayers } from './layer-shapes.ts';
import type { KernelRole, LayerPlan, Plan, SettingsRecord } from './plan.ts';
import { resolveSettings, selects, type ResolvedSettings } from './resolve-settings.ts';
import { layerSizes, planTotals } from './sizes.ts';

export interface PlanResult {
  readonly plan?: Plan;
  readonly diagnostics: Diagnostic[];
}

/** The kernel roles a layer needs: its base's, and its adapter's where it has one. */
export function kernelsFor(layer: Pick<LayerPlan, 'quant' | 'adapter'>): KernelRole[] {
  const roles: KernelRole[] = layer.quant
    ? ['quantize', 'pack', 'dequantize', 'forward', 'decode', 'backward_data']
    : ['dense_forward', 'dense_backward_data'];
  if (layer.adapter) roles.push('adapter_grad');
  if (layer.adapter?.kind === 'qalora') roles.push('merge');
  return roles;
}

function reportProblems(problems: readonly LayerProblem[], out: Diagnostic[]): void {
  const grouped = new Map<string, LayerProblem[]>();
  for (const p of problems) {
    const key = `${p.severity}|${p.span.file}|${p.span.offset}|${p.key}`;
    grouped.set(key, [...(grouped.get(key) ?? []), p]);
  }
  for (const group of grouped.values()) {
    const first = group[0]!;
    const message = first.message(describeLayers(group.map((p) => p.layer)));
    out.push(first.severity === 'error' ? error(first.span, message, first.hint) : warning(first.span, message, first.hint));
  }
}

/** A path with '/' between folders on every system (a backslash is a separator only on Windows;
 * elsewhere it is a character of the name and stays). */
function portablePath(path: string): string {
  return sep === '/' ? path : path.split(sep).join('/');
}

/** A line of the spec as `file:line`, the form the plan records provenance in. */
function lineOf(span: { readonly file: string; readonly line: number }): string {
  return `${portablePath(span.file)}:${span.line}`;
}

function sourcesOf(spec: CheckedSpec, resolved: ResolvedSettings): string[] {
  const lines = new Set<string>([lineOf(spec.quantSpan)]);
  if (spec.adapter && resolved.get('adapter')?.value === 'on') lines.add(lineOf(spec.adapter.span));
  for (const v of resolved.values()) if (v.override) lines.add(lineOf(v.override.span));
  return [...lines];
}

export function buildPlan(spec: CheckedSpec): PlanResult {
  const out: Diagnostic[] = [];
  const problems: LayerProblem[] = [];
  const layers: LayerPlan[] = [];
  const arch = spec.model.architecture;
  const usedSettings = new Set<string>();
  // GPTQ calibrates the whole model at once: one calibration text and sample count for all of it.
  let firstGptq: { name: string; calibration: string | undefined; samples: number } | undefined;

  for (const layer of linearLayers(arch)) {
    const resolved = resolveSettings(spec, layer);
    for (const v of resolved.values()) if (v.override && v.span) usedSettings.add(`${v.span.file}:${v.span.offset}`);
    const decision = decideLayer(spec, layer, resolved);
    problems.push(...decision.problems);
    const gptq = decision.quant?.gptq;
    if (gptq) {
      firstGptq ??= { name: layer.name, calibration: gptq.calibration, samples: gptq.samples };
      for (const key of ['calibration', 'samples'] as const) {
        if (gptq[key] === firstGptq[key]) continue;
        const first = firstGptq;
        const value = gptq[key];
        problems.push({
          severity: 'error', span: resolved.get(key)?.span ?? spec.quantSpan, key: `gptq-same-${key}`, layer,
          message: (names) => `${key} = ${String(value ?? '(the training data)')} for ${names}, but ${String(first[key] ?? '(the training data)')} for ${first.name}: GPTQ calibrates the whole model with one data set`,
          hint: `give every method = gptq layer the same ${key}`,
        });
      }
    }
    // lm_head is in the plan only when asked for; the block projections always are.
    if (layer.block === null && !decision.quant && !decision.adapter) continue;
    layers.push({
      ...layer,
      quant: decision.quant,
      adapter: decision.adapter,
      kernels: kernelsFor(decision),
      sizes: layerSizes(layer.inFeatures, layer.outFeatures, decision.quant, decision.adapter),
      sources: sourcesOf(spec, resolved),
    });
  }
  reportProblems(problems, out);
  reportShadowedSettings(spec, usedSettings, out);
  if (out.some((d) => d.severity === 'error')) return { diagnostics: out };

  const targets: Record<string, SettingsRecord> = {};
  for (const t of spec.targets) targets[t.kind] = withDefaults(TARGET_SCHEMAS[t.kind]!, t.settings);
  const model = spec.model;
  const tokenizer = model.settings.get('tokenizer')?.value as string | undefined;
  const plan: Plan = {
    spec: spec.name,
    specFile: portablePath(spec.entryFile),
    model: {
      source: model.source,
      ...(model.preset ? { preset: model.preset } : {}),
      ...(model.checkpoint ? { checkpoint: { path: model.checkpoint.path, format: model.checkpoint.format } } : {}),
      ...(tokenizer ? { tokenizer } : {}),
      architecture: arch,
    },
    layers,
    totals: planTotals(arch, layers),
    targets,
    ...(spec.train ? { train: withDefaults(TRAIN_SCHEMA, spec.train) } : {}),
    ...(spec.export ? { export: withDefaults(EXPORT_SCHEMA, spec.export) } : {}),
  };
  return { plan, diagnostics: out };
}

/** An override setting that is the final value for none of the layers it selects does nothing. */
function reportShadowedSettings(spec: CheckedSpec, used: ReadonlySet<string>, out: Diagnostic[]): void {
  const all = linearLayers(spec.model.architecture);
  spec.overrides.forEach((o, index) => {
    const selected = all.filter((layer) => selects(o, layer));
    if (selected.length === 0) return; // its selector already said it matches nothing
    for (const setting of o.settings.values()) {
      if (used.has(`${setting.span.file}:${setting.span.offset}`)) continue;
      const later = spec.overrides.slice(index + 1).find((p) => p.settings.has(setting.key) && selected.some((layer) => selects(p, layer)));
      out.push(warning(setting.span, `${setting.key} here has no effect: every layer this override selects takes ${setting.key} from a later override${later ? ` (line ${later.span.line})` : ''}`,
        'overrides apply in source order and the last one wins'));
    }
  });
}
