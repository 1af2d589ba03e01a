// The precedence rule, in one place: a layer's settings are the built-in defaults, then the
// quant block, then the adapter block (for the projections it names), then every override that
// selects the layer, in source order — includes count at the point they are included. The last
// one to set a key wins. Each value remembers where it was set, so errors point at it.
import type { SourceSpan } from '../diagnostics/diagnostic.ts';
import type { CheckedOverride, CheckedSettings, CheckedSpec, SettingValue } from '../check/checked-spec.ts';
import { ADAPTER_SCHEMA, OUTSIDE_BLOCKS, PROJECTIONS, QUANT_SCHEMA } from '../check/schema.ts';
import type { LinearLayer } from './layer-shapes.ts';
import { schemaDefault } from './defaults.ts';

export interface ResolvedValue {
  readonly value: SettingValue;
  /** `undefined` for a built-in default. */
  readonly span?: SourceSpan;
  /** The override that set it, if one did. */
  readonly override?: CheckedOverride;
}

export type ResolvedSettings = Map<string, ResolvedValue>;

export function selects(o: CheckedOverride, layer: LinearLayer): boolean {
  const { layers, projections } = o.selector;
  if (projections === undefined) {
    // No projection named: the override means the seven block projections.
    return layer.block !== null && (layers === undefined || layers.includes(layer.block));
  }
  if (!projections.includes(layer.projection)) return false;
  return layer.block === null || layers === undefined || layers.includes(layer.block);
}

function apply(into: ResolvedSettings, settings: CheckedSettings, override?: CheckedOverride): void {
  for (const [key, s] of settings) into.set(key, { value: s.value, span: s.span, ...(override ? { override } : {}) });
}

export function resolveSettings(spec: CheckedSpec, layer: LinearLayer): ResolvedSettings {
  const resolved: ResolvedSettings = new Map();
  for (const [key, field] of Object.entries({ ...QUANT_SCHEMA, ...ADAPTER_SCHEMA })) {
    const value = schemaDefault(field);
    if (value !== undefined) resolved.set(key, { value });
  }
  // Block projections are quantized unless an override says otherwise; lm_head only when asked.
  const inBlock = !(OUTSIDE_BLOCKS as readonly string[]).includes(layer.projection);
  resolved.set('quantize', { value: inBlock });
  apply(resolved, spec.quant);
  if (spec.adapter) {
    const placed = (spec.adapter.settings.get('projections')?.value as readonly string[] | undefined) ?? PROJECTIONS;
    const on = inBlock && placed.includes(layer.projection);
    resolved.set('adapter', { value: on ? 'on' : 'off', ...(spec.adapter.settings.get('projections') ? { span: spec.adapter.settings.get('projections')!.span } : {}) });
    apply(resolved, spec.adapter.settings);
  } else {
    resolved.set('adapter', { value: 'off' });
  }
  for (const o of spec.overrides) if (selects(o, layer)) apply(resolved, o.settings, o);
  return resolved;
}
