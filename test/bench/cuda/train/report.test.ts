// The benchmark's report (report.mjs) on a real qalc run: a tiny written-out architecture
// trained on the cpu backend stands in for the 7B run on the GPU (same run folder, same
// summary.json and train.jsonl), beside the JSON lines reference.py prints (written here by
// hand: torch is not on this machine). Checks the FLOP count, the MFU and ratio arithmetic,
// the steady-state rate (step 1 left out), and where the peak memory comes from.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cpuBackend } from '../../../../src/runtime/cpu/backend.ts';
import { Progress } from '../../../../src/train/progress.ts';
import { train } from '../../../../src/train/trainer.ts';
import { planFrom } from '../../../support/inline-spec.ts';
import { shakespeareSlice, TOK512 } from '../../../train/tiny-model.ts';
import { buildReport, flopsPerToken, LLAMA2_7B, markdown, profiledSplit, qaloraTrainable, stepGraphResult } from './report.mjs';

const work = mkdtempSync(join(tmpdir(), 'qalc-train-bench-'));
const TINY = { dim: 64, hidden: 128, kvDim: 32, vocab: 512, layers: 2 };
const SEQ = 32;
const SPEC = join(work, 'tiny.qal');
const plan = planFrom(SPEC, `spec tiny
model {
  dim = 64  hidden_dim = 128  layers = 2  heads = 4  kv_heads = 2  vocab = 512  context = 64
  tokenizer = "${TOK512}"
}
quant { bits = 4  group = 16 }
adapter { rank = 4  alpha = 8 }
train {
  data = "${shakespeareSlice(work, 20_000)}"
  seq_len = ${SEQ}
  batch = 1
  steps = 4
  eval_every = 1000000
  checkpoint_every = 1000000
}
`);
const quiet = new Progress({ isTTY: false, write: () => true } as unknown as NodeJS.WriteStream, 1);
const json = (name: string, value: object) => writeFileSync(join(work, name), `some log line\n${JSON.stringify(value)}\n`);

describe('train-bench report', () => {
  it('counts LLaMA-2-7B\'s model FLOPs per token as 4·N of the frozen linears plus causal attention', () => {
    const flops = flopsPerToken(LLAMA2_7B, 2048);
    expect(flops.linearParameters).toBe(32 * (2 * 4096 * 4096 + 2 * 4096 * 4096 + 3 * 4096 * 11008) + 32000 * 4096); // 6.607 G
    expect(flops.total).toBe(28_038_922_240); // 4 · 6,607,077,376 + 6 · 2048 · 4096 · 32
    expect(qaloraTrainable(LLAMA2_7B)).toBe(32 * (4 * (128 * 64 + 64 * 4096) + 2 * (128 * 64 + 64 * 11008) + (344 * 64 + 64 * 4096))); // 89,309,184: the 89 M
  });

  it('reads a qalc run folder beside the anchors, and computes MFU and the ratios at equal depth', async () => {
    await train({ plan, specDir: work, out: join(work, 'qalc-l2'), ops: cpuBackend().ops, progress: quiet, randomWeights: { seed: 1 } });
    writeFileSync(join(work, 'commit.txt'), 'abc1234\n');
    json('gemm.json', { mode: 'gemm', tflops: 500 });
    json('peft-lora-l2.json', { mode: 'peft-lora', tokens_per_s: 1000, peak_allocated_bytes: 2 ** 30, trainable_parameters: 123_000, step_ms_by_class: { gemm: 1, attention: 2, other: 3 } });
    json('qalora-eager-l2.json', { mode: 'qalora-eager', tokens_per_s: 500, peak_allocated_bytes: 2 ** 31, trainable_parameters: 45_000,
      attn_implementation: 'sdpa', layer_check: { max_error_in_steps: 0.5, relative_error_y_dx_dA_dB: [1e-3, 2e-3, 3e-3, 4e-3], ok: true } });
    writeFileSync(join(work, 'qalc-l2.memory'), '100\n150\n612\n300\n'); // MiB: baseline, then samples
    writeFileSync(join(work, 'qalc-l2.log'), 'cuda: quantized linear layers on the GPU: 10 forward\n');

    const report = buildReport(work, { seq: SEQ, arch: TINY });
    const steps = readFileSync(join(work, 'qalc-l2', 'train.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { tokens_per_s: number });
    expect(steps).toHaveLength(4);
    const steady = steps.slice(1).map((s) => s.tokens_per_s).sort((a, b) => a - b);
    const qalc = report.rows.find((r) => r.system === 'qalc')!;
    expect(qalc.tokens_per_s).toBe(steady[1]);
    const summary = JSON.parse(readFileSync(join(work, 'qalc-l2', 'summary.json'), 'utf8')) as { tokensPerSecond: number };
    expect(qalc.summary_tokens_per_s).toBe(summary.tokensPerSecond);
    expect(qalc.complete).toBe(true);
    const flops = 4 * (2 * (2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 128) + 512 * 64) + 6 * SEQ * 64 * 2;
    expect(qalc.flops_per_token).toBe(flops);
    expect(qalc.mfu_vs_measured).toBeCloseTo(qalc.tokens_per_s * flops / 1e12 / 500, 15);
    expect(qalc.mfu_vs_datasheet).toBeCloseTo(qalc.tokens_per_s * flops / 1e12 / 989, 15);
    expect(qalc.peak_bytes).toBe(512 * 2 ** 20);
    expect(qalc.peak_how).toContain('nvidia-smi');
    const [comparison] = report.comparisons;
    expect(comparison!.layers).toBe(2);
    expect(comparison!.vs_qalora_reference).toBeCloseTo(qalc.tokens_per_s / 500, 12);
    expect(comparison!.vs_peft_lora).toBeCloseTo(qalc.tokens_per_s / 1000, 12);
    expect(comparison!.peak_vs_qalora_reference).toBeCloseTo(0.25, 12);
    expect(report.commit).toBe('abc1234');

    const text = markdown(report);
    expect(text).toContain('(commit abc1234)');
    expect(text).toMatch(/\| qalc train --backend cuda \(QA-LoRA INT4 g32 r64\) \| 2 \| [\d,]+ \|/);
    expect(text).toContain('| 1.0 / 2.0 / 3.0 |');
    expect(text).toContain('qalc said: cuda: quantized linear layers on the GPU');
    expect(text).toContain('its first QaLoraLinear against its definition: ok (max |Ŵ − W| 0.500 steps');
  });

  it('takes the peak from summary.json\'s device key when qalc records it, and reports a run cut short', () => {
    const other = mkdtempSync(join(tmpdir(), 'qalc-train-bench-'));
    cpSync(join(work, 'qalc-l2'), join(other, 'qalc-l2'), { recursive: true });
    const summaryPath = join(other, 'qalc-l2', 'summary.json');
    writeFileSync(summaryPath, JSON.stringify({ ...JSON.parse(readFileSync(summaryPath, 'utf8')), device: { peakBytes: 12345, launches: 678 } }));
    const withDevice = buildReport(other, { seq: SEQ, arch: TINY }).rows.find((r) => r.system === 'qalc')!;
    expect(withDevice.peak_bytes).toBe(12345);
    expect(withDevice.peak_how).toContain('device.peakBytes');
    expect(withDevice.peak_sampled_bytes).toBeUndefined(); // no samples in that folder

    const cut = mkdtempSync(join(tmpdir(), 'qalc-train-bench-'));
    cpSync(join(work, 'qalc-l2', 'train.jsonl'), join(cut, 'qalc-l2', 'train.jsonl'));
    writeFileSync(join(cut, 'qalc-l2.log'), 'killed\n');
    const report = buildReport(cut, { seq: SEQ, arch: TINY });
    expect(report.rows.find((r) => r.system === 'qalc')!.complete).toBe(false);
    expect(report.missing.join('\n')).toContain('qalc at 2 blocks: no summary.json');
    expect(report.missing.join('\n')).toContain('gemm ceiling');
  });
  it('prints the step-graph line and takes the replayed steps\' times apart from the launched ones\'', () => {
    const graphFolder = mkdtempSync(join(tmpdir(), 'qalc-train-bench-'));
    cpSync(join(work, 'qalc-l2'), join(graphFolder, 'qalc-l2'), { recursive: true });
    const line = 'train step: the backward as a CUDA graph of 2900 device calls, captured at step 4 and replayed 3 times; …';
    const summaryPath = join(graphFolder, 'qalc-l2', 'summary.json');
    writeFileSync(summaryPath, JSON.stringify({ ...JSON.parse(readFileSync(summaryPath, 'utf8')), stepGraph: line }));
    const runs = ['traced', 'traced', 'traced', 'captured', 'replayed', 'replayed', 'replayed'];
    const seconds = [9, 0.2, 0.21, 0.5, 0.15, 0.17, 0.16];
    writeFileSync(join(graphFolder, 'qalc-l2', 'train.jsonl'), runs.map((backward, i) => JSON.stringify({ step: i + 1, loss: 5, tokens_per_s: 32 / seconds[i]!, seconds: seconds[i], backward })).join('\n') + '\n');
    const qalc = buildReport(graphFolder, { seq: SEQ, arch: TINY }).rows.find((r) => r.system === 'qalc')!;
    expect(qalc.step_graph).toBe(line);
    expect(qalc.replayed_step_ms_median).toBeCloseTo(160, 9);
    expect(qalc.launched_step_ms_median).toBeCloseTo(210, 9); // the upper middle of an even count, as the report takes it
    expect(markdown(buildReport(graphFolder, { seq: SEQ, arch: TINY }))).toContain(`qalc at 2 blocks: ${line}; steps 2…: 160.0 ms a step replayed (median of 3), 210.0 ms launched op by op (median of 2)`);
    expect(stepGraphResult(undefined, [])).toEqual({});
  });

  it('splits a profiled run\'s steps by class, leaving step 1 out', () => {
    const folder = mkdtempSync(join(tmpdir(), 'qalc-train-bench-profiled-'));
    mkdirSync(join(folder, 'qalc-l4-profiled'));
    const step = (linear: number, attention: number) => JSON.stringify({ step: 1, loss: 1, seconds: 1, profile_ms: { linear, lm_head: 2, attention, other: 3, copy: 1, host: 5 } });
    writeFileSync(join(folder, 'qalc-l4-profiled', 'train.jsonl'), [step(900, 90), step(10, 4), step(12, 6), step(11, 5)].join('\n') + '\n');
    const split = profiledSplit(folder, 4) as { step_ms_by_class: Record<string, number> };
    expect(split.step_ms_by_class).toEqual({ gemm: 13, attention: 5, other: 4, host: 5 });
    expect(profiledSplit(folder, 32)).toEqual({});
  });
  it('reports an events-profiled run\'s GPU idle instead of the host\'s time', () => {
    const folder = mkdtempSync(join(tmpdir(), 'qalc-train-bench-events-'));
    mkdirSync(join(folder, 'qalc-l4-profiled'));
    const step = (idle: number) => JSON.stringify({ step: 1, loss: 1, seconds: 1, profile_ms: { linear: 10, gemm: 1, attention: 4, other: 3, copy: 1, idle } });
    writeFileSync(join(folder, 'qalc-l4-profiled', 'train.jsonl'), [step(50), step(7), step(9), step(8)].join('\n') + '\n');
    const split = profiledSplit(folder, 4) as { step_ms_by_class: Record<string, number>; step_split_how: string };
    expect(split.step_ms_by_class).toEqual({ gemm: 11, attention: 4, other: 4, idle: 8 });
    expect(split.step_split_how).toMatch(/QALC_CUDA_PROFILE=events/);
  });
});
