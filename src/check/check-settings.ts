// Checks one block's settings against its schema: known keys, no key twice, values of the
// right type and range. Returns the settings that passed, so later checks see only good values.
import { error, type Diagnostic } from '../diagnostics/diagnostic.ts';
import { didYouMean, oneOf } from '../diagnostics/suggest.ts';
import type { Body, Scalar, Value } from '../syntax/ast.ts';
import type { CheckedSetting, SettingValue } from './checked-spec.ts';
import type { Field, FieldType, Schema } from './schema.ts';

const KIND_WORDS: Record<string, string> = {
  integer: 'an integer', number: 'a number', string: 'a string', name: 'a name', list: 'a list',
};

function describeValue(value: Value): string {
  return KIND_WORDS[value.kind] ?? value.kind;
}

function checkScalar(key: string, type: FieldType, value: Scalar, out: Diagnostic[]): SettingValue | undefined {
  const fail = (message: string, hint?: string) => {
    out.push(error(value.span, message, hint));
    return undefined;
  };
  switch (type.kind) {
    case 'int': {
      if (value.kind !== 'integer') return fail(`${key} must be an integer, not ${describeValue(value)} '${value.text}'`);
      const n = value.value as number;
      if (!Number.isSafeInteger(n)) return fail(`${key} = ${value.text} is too large`);
      if (type.allowed && !type.allowed.includes(n)) return fail(`${key} must be ${oneOf(type.allowed)}, not ${n}`);
      if (type.min !== undefined && n < type.min) return fail(`${key} must be at least ${type.min}, not ${n}`);
      if (type.max !== undefined && n > type.max) return fail(`${key} must be at most ${type.max}, not ${n}`);
      return n;
    }
    case 'number': {
      if (value.kind !== 'integer' && value.kind !== 'number') return fail(`${key} must be a number, not ${describeValue(value)} '${value.text}'`);
      const n = value.value as number;
      if (!Number.isFinite(n)) return fail(`${key} = ${value.text} is not a finite number`);
      if (type.min !== undefined && (type.minExclusive ? n <= type.min : n < type.min)) {
        return fail(`${key} must be ${type.minExclusive ? 'greater than' : 'at least'} ${type.min}, not ${value.text}`);
      }
      if (type.max !== undefined && (type.maxExclusive ? n >= type.max : n > type.max)) {
        return fail(`${key} must be ${type.maxExclusive ? 'less than' : 'at most'} ${type.max}, not ${value.text}`);
      }
      return n;
    }
    case 'bool': {
      if (value.kind === 'name' && (value.value === 'true' || value.value === 'false')) return value.value === 'true';
      return fail(`${key} must be true or false, not '${value.text}'`);
    }
    case 'enum': {
      if (value.kind !== 'name') {
        const unquoted = value.kind === 'string' && type.values.includes(value.value as string);
        return fail(`${key} must be ${oneOf(type.values)}, not ${describeValue(value)} ${value.text}`, unquoted ? `write it without quotes: ${key} = ${value.value}` : undefined);
      }
      if (!type.values.includes(value.value as string)) {
        return fail(`'${value.text}' is not a value of ${key}: expected ${oneOf(type.values)}`, didYouMean(value.text, type.values));
      }
      return value.value;
    }
    case 'enumList':
      return checkScalar(key, { kind: 'enum', values: type.values }, value, out);
    case 'enumOrInt': {
      if (value.kind === 'integer') return checkScalar(key, { kind: 'int', ...(type.min === undefined ? {} : { min: type.min }) }, value, out);
      const expected = `${type.values.map((v) => `'${v}'`).join(', ')} or an integer`;
      if (value.kind === 'name') {
        if (type.values.includes(value.value as string)) return value.value;
        return fail(`'${value.text}' is not a value of ${key}: expected ${expected}`, didYouMean(value.text, type.values));
      }
      const unquoted = value.kind === 'string' && type.values.includes(value.value as string);
      return fail(`${key} must be ${expected}, not ${describeValue(value)} ${value.text}`, unquoted ? `write it without quotes: ${key} = ${value.value}` : undefined);
    }
    case 'word': {
      if (value.kind !== 'name' && value.kind !== 'string') return fail(`${key} must be a name, not ${describeValue(value)} '${value.text}'`);
      return value.value as string;
    }
    case 'path': {
      if (value.kind !== 'string') return fail(`${key} must be a path in quotes, not ${describeValue(value)} '${value.text}'`, `write ${key} = "${value.text}"`);
      const path = value.value as string;
      if (path.length === 0) return fail(`${key} must not be empty`);
      if (path.includes('\0')) return fail(`${key} contains a NUL character`);
      return path;
    }
  }
}

export function checkValue(key: string, field: Field, value: Value, out: Diagnostic[]): SettingValue | undefined {
  if (value.kind === 'list') {
    if (field.type.kind !== 'enumList') {
      out.push(error(value.span, `${key} takes a single value, not a list`));
      return undefined;
    }
    const seen = new Set<string>();
    const items: string[] = [];
    let ok = true;
    for (const item of value.items) {
      const checked = checkScalar(key, field.type, item, out) as string | undefined;
      if (checked === undefined) ok = false;
      else if (seen.has(checked)) {
        out.push(error(item.span, `'${checked}' is listed twice in ${key}`));
        ok = false;
      } else {
        seen.add(checked);
        items.push(checked);
      }
    }
    if (value.items.length === 0) {
      out.push(error(value.span, `${key} must list at least one of ${oneOf(field.type.values)}`));
      return undefined;
    }
    return ok ? items : undefined;
  }
  if (field.type.kind === 'enumList') {
    const single = checkScalar(key, field.type, value, out) as string | undefined;
    return single === undefined ? undefined : [single];
  }
  return checkScalar(key, field.type, value, out);
}

/** `what` names the block in messages: "quant block", "override at line 12". */
export function checkBody(body: Body, schema: Schema, what: string, out: Diagnostic[]): Map<string, CheckedSetting> {
  const checked = new Map<string, CheckedSetting>();
  const firstSeen = new Map<string, number>();
  const keys = Object.keys(schema);
  for (const setting of body.settings) {
    const field = schema[setting.key];
    if (!field) {
      out.push(error(setting.keySpan, `unknown setting '${setting.key}' in ${what}`,
        didYouMean(setting.key, keys) ?? `${what} settings are: ${keys.join(', ')}`));
      continue;
    }
    const previous = firstSeen.get(setting.key);
    if (previous !== undefined) {
      out.push(error(setting.keySpan, `${setting.key} is set twice in ${what}`, `the first is on line ${previous}; keep one`));
      continue;
    }
    firstSeen.set(setting.key, setting.keySpan.line);
    const value = checkValue(setting.key, field, setting.value, out);
    if (value !== undefined) {
      checked.set(setting.key, { key: setting.key, value, span: setting.span, valueSpan: setting.value.span });
    }
  }
  return checked;
}
