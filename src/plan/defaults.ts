// Built-in defaults are written in the schema as the user would write them ("fp16", "0.01",
// "[q, k]"); this turns them into values.
import type { SettingValue } from '../check/checked-spec.ts';
import type { Field, Schema } from '../check/schema.ts';

export function schemaDefault(field: Field): SettingValue | undefined {
  const text = field.default;
  if (text === undefined) return undefined;
  switch (field.type.kind) {
    case 'int': case 'number': return Number(text);
    case 'bool': return text === 'true';
    case 'enumOrInt': return /^\d+$/.test(text) ? Number(text) : text;
    case 'enumList': return text.replace(/[[\]\s]/g, '').split(',').filter((s) => s.length > 0);
    default: return text;
  }
}

/** A block's settings with its defaults filled in, as a plain record for the plan. */
export function withDefaults(schema: Schema, written: ReadonlyMap<string, { readonly value: SettingValue }> | undefined): Record<string, SettingValue> {
  const record: Record<string, SettingValue> = {};
  for (const [key, field] of Object.entries(schema)) {
    const value = written?.get(key)?.value ?? schemaDefault(field);
    if (value !== undefined) record[key] = value;
  }
  return record;
}
