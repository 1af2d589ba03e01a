// stories260K on TinyStories (its own domain) as a spec written to a folder and planned: the
// quantization comparisons (GPTQ against RTN) run through the same path as `qalc eval`.
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { frontEnd } from '../../src/compile.ts';
import type { Plan } from '../../src/plan/plan.ts';

const shared = resolve('../shared');

export interface TinyStoriesSpec {
  /** The quant block's body, e.g. `bits = 4  group = 16  method = gptq`. */
  readonly quant: string;
  /** Statements after it; by default down's 172 inputs get group 43. */
  readonly overrides?: string;
  readonly seqLen: number;
  readonly evalFraction: number;
}

export function tinyStoriesPlan(folder: string, name: string, spec: TinyStoriesSpec): Plan {
  const path = writeTinyStoriesSpec(folder, name, spec);
  const result = frontEnd(path);
  if (!result.plan) throw new Error(result.diagnostics.map((d) => d.message).join('; '));
  return result.plan;
}

/** The spec file only, for the CLI; its path. */
export function writeTinyStoriesSpec(folder: string, name: string, spec: TinyStoriesSpec): string {
  const path = join(folder, `${name}.qal`);
  writeFileSync(path, `spec ${name}
model {
  checkpoint = "${shared}/models/stories260K/stories260K.bin"
  tokenizer = "${shared}/models/stories260K/tok512.bin"
}
quant { ${spec.quant} }
${spec.overrides ?? 'override proj down { group = 43 }'}
train {
  data = "${shared}/data/tinystories_val_head.txt"
  eval_fraction = ${spec.evalFraction}
  seq_len = ${spec.seqLen}
  batch = 8
}
`);
  return path;
}
