// Test fixture: stories260K fine-tuned for a few steps under a spec with 4-bit groups of 32
// (so q, k, v, o, gate and up fit GGUF's Q4_1) and groups of 43 for the down projection
// (K = 172: no Q4_1, no single PEFT qalora_group_size), trained once per test file.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Plan } from '../../src/plan/plan.ts';
import { planFrom } from '../support/inline-spec.ts';
import { cpuBackend } from '../../src/runtime/cpu/backend.ts';
import { Progress } from '../../src/train/progress.ts';
import { train } from '../../src/train/trainer.ts';
import { sharedFile, STORIES260K, TINY_SHAKESPEARE, TOK512 } from '../train/tiny-model.ts';

export interface TrainedRun {
  readonly work: string;
  readonly specPath: string;
  readonly plan: Plan;
  readonly runDir: string;
  readonly checkpoint: string;
}

export const { ops } = cpuBackend();

/** The model block's settings: stories260K.bin with tok512.bin unless told otherwise. */
export const LLAMA2C_MODEL = `checkpoint = "${STORIES260K}"\n  tokenizer = "${TOK512}"`;
/** stories260K as a Hugging Face folder: its tokenizer is the folder's (tokenizer.json). */
export const HF_MODEL = `checkpoint = "${sharedFile('models/stories260K-hf')}"`;

export function specText(data: string, { group = 32, downGroup = 43, steps = 4, extra = '', model = LLAMA2C_MODEL } = {}): string {
  return `spec exported
model {
  ${model}
}
quant { bits = 4  group = ${group} }
override proj down { group = ${downGroup} }
adapter { rank = 2  alpha = 4 }
train {
  data = "${data}"
  seq_len = 32
  batch = 4
  lr = 2e-2
  seed = 3
  steps = ${steps}
  eval_every = ${steps}
  checkpoint_every = ${steps}
}
${extra}`;
}


export async function trainedRun(options: Parameters<typeof specText>[1] = {}): Promise<TrainedRun> {
  const work = mkdtempSync(join(tmpdir(), 'qalc-export-'));
  const data = join(work, 'shakespeare.txt');
  writeFileSync(data, readFileSync(TINY_SHAKESPEARE, 'utf8').slice(0, 40_000));
  const specPath = join(work, 'exported.qal');
  const plan = planFrom(specPath, specText(data, options));
  const runDir = join(work, 'run');
  const quiet = { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream;
  await train({ plan, specDir: work, out: runDir, ops, progress: new Progress(quiet, 1), evalBatches: 1 });
  return { work, specPath, plan, runDir, checkpoint: join(runDir, 'checkpoint.safetensors') };
}

export { planFrom } from '../support/inline-spec.ts';
