// The settings tables of grammars/LANGUAGE.md, written from the schema so the reference can't
// drift from what the checker accepts. `npm run grammar:docs` rewrites them; a test fails when
// the committed reference is stale.
import { BLOCK_SCHEMAS, OVERRIDE_SCHEMA, TARGET_SCHEMAS, type Field, type Schema } from './schema.ts';

export const BEGIN_MARKER = '<!-- settings tables: generated from src/check/schema.ts by `npm run grammar:docs` -->';
export const END_MARKER = '<!-- end of settings tables -->';

function describeType(f: Field): string {
  const t = f.type;
  switch (t.kind) {
    case 'int':
      return t.allowed ? t.allowed.join(' \\| ') : `integer${t.min !== undefined ? ` ≥ ${t.min}` : ''}${t.max !== undefined ? `, ≤ ${t.max}` : ''}`;
    case 'number':
      return `number${t.min !== undefined ? ` ${t.minExclusive ? '>' : '≥'} ${t.min}` : ''}${t.max !== undefined ? `, ${t.maxExclusive ? '<' : '≤'} ${t.max}` : ''}`;
    case 'bool': return 'true \\| false';
    case 'enum': return t.values.join(' \\| ');
    case 'enumList': return `list of ${t.values.join(', ')}`;
    case 'path': return '"path"';
    case 'word': return 'name';
    case 'enumOrInt': return `${t.values.join(' \\| ')} \\| integer${t.min !== undefined ? ` ≥ ${t.min}` : ''}`;
  }
}

function table(schema: Schema): string {
  const rows = Object.entries(schema).map(([key, f]) => `| \`${key}\` | ${describeType(f)} | ${f.default ?? '—'} | ${f.doc} |`);
  return ['| key | value | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

export function settingsReference(): string {
  const sections = [
    ...Object.entries(BLOCK_SCHEMAS).map(([name, schema]) => `### \`${name} { … }\`\n\n${table(schema)}`),
    ...Object.entries(TARGET_SCHEMAS).map(([name, schema]) => `### \`target ${name} { … }\`\n\n${table(schema)}`),
    `### \`override … { … }\`\n\nEvery \`quant\` key and every \`adapter\` key except \`projections\`, and:\n\n${table({ quantize: OVERRIDE_SCHEMA.quantize!, adapter: OVERRIDE_SCHEMA.adapter! })}`,
  ];
  return `${BEGIN_MARKER}\n\n${sections.join('\n\n')}\n\n${END_MARKER}`;
}

/** The document with its tables replaced by the current ones. */
export function withCurrentTables(document: string): string {
  const begin = document.indexOf(BEGIN_MARKER);
  const end = document.indexOf(END_MARKER);
  if (begin < 0 || end < begin) throw new Error('LANGUAGE.md has lost its settings-table markers');
  return document.slice(0, begin) + settingsReference() + document.slice(end + END_MARKER.length);
}
