// A QA-LoRA fine-tune that starts from a GPTQ checkpoint, the paper's own setup: the file's
// codes, scales and zeros are the frozen base as they are (nothing is quantized again), and
// train, eval and merge work on it. The checkpoint is stories260K-hf with its attention
// GPTQ-packed by test/model/gptq_fixture.py; the spec quantizes the MLP, stored as floats, by RTN.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { frontEnd } from '../../src/compile.ts';
import { readGptqCheckpoint } from '../../src/model/gptq-checkpoint.ts';
import type { Plan } from '../../src/plan/plan.ts';
import { cpuBackend } from '../../src/runtime/cpu/backend.ts';
import { evaluateRun } from '../../src/train/evaluate-run.ts';
import { mergeRun } from '../../src/train/merge-run.ts';
import { Progress } from '../../src/train/progress.ts';
import { setUpTraining, train } from '../../src/train/trainer.ts';
import { makeGptqFixture } from '../support/gptq-fixture.ts';
import { TINY_SHAKESPEARE, TOK512 } from './tiny-model.ts';

const work = mkdtempSync(join(tmpdir(), 'qalc-gptq-run-'));
const DATA = join(work, 'shakespeare.txt');
writeFileSync(DATA, readFileSync(TINY_SHAKESPEARE, 'utf8').slice(0, 40_000));
const { ops } = cpuBackend();

function plan(gptqDir: string, quant = 'bits = 4  group = 16'): { plan?: Plan; messages: string[] } {
  const path = join(work, 'gptq.qal');
  writeFileSync(path, `spec from_gptq
model {
  checkpoint = "${gptqDir}"
  tokenizer = "${TOK512}"
}
quant { ${quant} }
override proj down { group = 43 }
adapter { rank = 4  alpha = 8 }
train {
  data = "${DATA}"
  seq_len = 32
  batch = 4
  lr = 3e-3
  steps = 4
  eval_every = 4
}
`);
  const result = frontEnd(path);
  return { ...(result.plan ? { plan: result.plan } : {}), messages: result.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message) };
}

describe('fine-tuning from a GPTQ checkpoint', () => {
  const dir = makeGptqFixture(join(work, 'gptq-4bit'), ['--bits', '4', '--group', '16']);

  it('check fixes bits and group of the layers the file quantized, and refuses method = gptq on them', () => {
    expect(plan(dir, 'bits = 3  group = 16').messages).toContainEqual(expect.stringMatching(/the GPTQ checkpoint is 4-bit, but bits = 3 for q, k, v, o of layers 0\.\.4/));
    expect(plan(dir, 'bits = 4  group = 32').messages).toContainEqual(expect.stringMatching(/the GPTQ checkpoint has group size 16, but group = 32 for q, k, v, o of layers 0\.\.4/));
    expect(plan(dir, 'bits = 4  group = 16  method = gptq').messages).toContainEqual(expect.stringMatching(/method = gptq would quantize q, k, v, o of layers 0\.\.4 again/));
  });

  it('the frozen base is the file\'s codes, scales and zeros; the MLP is RTN-quantized as the spec says', () => {
    const { plan: p } = plan(dir);
    expect(p!.model.checkpoint?.format).toBe('gptq');
    const { model } = setUpTraining(p!, work, ops);
    const file = readGptqCheckpoint(dir);
    for (let l = 0; l < 5; l++) {
      for (const projection of ['q', 'k', 'v', 'o'] as const) {
        const base = model.blocks[l]![projection].layer.base;
        expect(base.kind === 'quantized' && base.weight).toEqual(file.quantized.get(`layers.${l}.${projection}`));
      }
      const down = model.blocks[l]!.down.layer.base;
      expect(down.kind === 'quantized' && down.weight.groupSize).toBe(43);
    }
  });

  it('trains, evaluates and merges (the merged model computes what the adapters do)', async () => {
    const { plan: p } = plan(dir);
    const out = join(work, 'run');
    const lines: string[] = [];
    const progress = new Progress({ isTTY: false, write: (s: string) => { lines.push(s); return true; } } as unknown as NodeJS.WriteStream, 1);
    const summary = await train({ plan: p!, specDir: work, out, ops, progress });
    expect(summary.evalLossAfter).toBeLessThan(summary.evalLossBefore);
    const checkpoint = join(out, 'checkpoint.safetensors');
    const evaluated = await evaluateRun({ plan: p!, specDir: work, checkpoint, ops });
    expect(evaluated.loss).toBeCloseTo(summary.evalLossAfter!, 6);
    const merged = await mergeRun(p!, work, checkpoint, join(out, 'merged.safetensors'), ops);
    expect(merged.relativeDifference).toBeLessThan(1e-5);
  });
});
