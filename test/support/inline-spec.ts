// Specs written inside tests: the front end reads them through an in-memory file system, so
// a test states its whole input. Paths to the shared model resolve from the repository root.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { frontEnd, type FrontEndResult } from '../../src/compile.ts';
import { renderDiagnostic } from '../../src/diagnostics/render.ts';
import type { Plan } from '../../src/plan/plan.ts';

export const SHARED = resolve('../shared');
export const STORIES_BIN = resolve(SHARED, 'models/stories260K/stories260K.bin');

/** examples/stories260k.qal with absolute paths into shared/, to write anywhere, and `train` inside its train block. */
export function stories260kSpec(name: string, train: string): string {
  return `spec ${name}
model {
  checkpoint = "${SHARED}/models/stories260K/stories260K.bin"
  tokenizer = "${SHARED}/models/stories260K/tok512.bin"
}
quant { bits = 4  group = 16 }
override proj down { group = 43 }
adapter { rank = 4  alpha = 8 }
train {
  data = "${SHARED}/data/tinyshakespeare.txt"
  ${train}
}
`;
}

export function compileInline(files: Record<string, string>, entry = Object.keys(files)[0]!): FrontEndResult {
  return frontEnd(entry, (path) => {
    const text = files[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return text;
  });
}

/** One spec file, with `spec t` and a model prepended unless the text has its own. */
export function compileSpec(body: string, model = 'model { preset = llama2_7b }'): FrontEndResult {
  const text = `${/^\s*spec\s/m.test(body) ? '' : 'spec t\n'}${/^\s*model\s*\{/m.test(body) ? '' : model + '\n'}${body}`;
  return compileInline({ 't.qal': text });
}

export function messages(result: FrontEndResult): string[] {
  return result.diagnostics.map((d) => `${d.span.line}:${d.span.col}: ${d.severity}: ${d.message}${d.hint ? ` [hint: ${d.hint}]` : ''}`);
}

export function rendered(result: FrontEndResult): string {
  return result.diagnostics.map((d) => renderDiagnostic(d, result.sources)).join('\n');
}

/** `text` written to `path` (a real file: specs name files beside them) and planned; its diagnostics thrown if it does not plan. */
export function planFrom(path: string, text: string): Plan {
  writeFileSync(path, text);
  const result = frontEnd(path);
  if (!result.plan) throw new Error(`spec did not plan: ${result.diagnostics.map((d) => d.message).join('; ')}`);
  return result.plan;
}
