// Plain data as TypeScript a person would write: identifier keys unquoted, single-quoted
// strings, short arrays of numbers or strings on one line.
import { tsString } from '../backends/escape.ts';

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

export function literal(value: unknown, indent = ''): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return tsString(value);
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : 'Number.NaN';
  if (typeof value === 'boolean') return String(value);
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    if (value.every((v) => typeof v !== 'object' || v === null)) {
      const oneLine = `[${value.map((v) => literal(v)).join(', ')}]`;
      if (oneLine.length <= 100) return oneLine;
    }
    return `[\n${value.map((v) => `${inner}${literal(v, inner)},`).join('\n')}\n${indent}]`;
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    return `{\n${entries.map(([k, v]) => `${inner}${IDENTIFIER.test(k) ? k : tsString(k)}: ${literal(v, inner)},`).join('\n')}\n${indent}}`;
  }
  throw new TypeError(`cannot write a ${typeof value} as a literal`);
}
