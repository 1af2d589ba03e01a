// The generation benchmark's report (report.mjs) on real qalc output: `qalc generate` of
// stories260K on the cpu backend stands in for the device runs (the same stderr lines: the
// tokens/s line the report reads), beside the JSON line reference.py prints (written here by
// hand: torch is not on this machine). Checks the roofline arithmetic against the issue's
// numbers, the parsing, the self-checks (a cpu/cuda text mismatch fails), and the table.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildReport, bytesPerToken, LLAMA2_7B, markdown, parseDecodeStep, parseQalcLog } from './report.mjs';
import { describeDecodeGraph } from '../../../../src/cli/commands/generate-cuda.ts';

const work = mkdtempSync(join(tmpdir(), 'qalc-generate-bench-'));
const generate = (steps: number) => spawnSync(process.execPath, ['src/cli/qalc.mjs', 'generate', '../shared/models/stories260K/stories260K.bin', '--tokenizer', '../shared/models/stories260K/tok512.bin', '--steps', String(steps), '--prompt', 'Once upon a time'], { encoding: 'utf8' });

describe('generate-bench report', () => {
  it('counts the bytes a token reads as the issue does: the merged W4 g32 7B roofline ≈ 1,100 tokens/s at 4.8 TB/s, 75 % of it ≈ 800', () => {
    const bytes = bytesPerToken(LLAMA2_7B);
    // 6.48 G projection weights at 0.625 bytes, the 262 MB bf16 lm_head.
    expect(bytes.mergedW4).toBe(6_476_005_376 * 0.625 + 2 * 32000 * 4096);
    expect(0.75 * 4.8e12 / bytes.mergedW4).toBeGreaterThan(800);
    expect(0.75 * 4.8e12 / bytes.mergedW4).toBeLessThan(850);
    expect(bytes.bf16).toBe(2 * 6_476_005_376 + 2 * 32000 * 4096);
    // float32 scales and zeros (8 bytes a group of 32) and 89.3 M float32 adapter parameters.
    expect(bytes.qalcToday - bytes.mergedW4).toBe(6_476_005_376 * (4 / 32) + 4 * 89_309_184);
  });

  it('reads qalc generate\'s stderr, checks the cpu and cuda texts agree, and prints the table', () => {
    const run = generate(40);
    expect(run.status, run.stderr).toBe(0);
    writeFileSync(join(work, 'commit.txt'), 'abc1234\n');
    writeFileSync(join(work, 'stories-cpu.txt'), run.stdout);
    writeFileSync(join(work, 'stories-cuda.txt'), run.stdout);
    // The lines the cuda run adds, as the CLI writes them (generate.ts's warm-up line, describeDecodeGraph's).
    const graphLine = describeDecodeGraph({ mode: 'graph', nodes: 834, capturedAt: 3, replays: 137 });
    const launchedLine = describeDecodeGraph({ mode: 'launches', why: 'QALC_CUDA_GRAPH=0' });
    writeFileSync(join(work, 'qalc-generate.log'), `cuda backend: NVIDIA H200 (compute 9.0), …\nwarm-up: 4 forwards (the weights to the device, the step captured) 1.25 s\n${run.stderr}${graphLine}\n`);
    writeFileSync(join(work, 'qalc-generate.txt'), run.stdout);
    writeFileSync(join(work, 'qalc-generate-nograph.log'), `cuda backend: NVIDIA H200 (compute 9.0), …\nwarm-up: 1 forward (the weights to the device) 1.30 s\n${run.stderr}${launchedLine}\n`);
    writeFileSync(join(work, 'qalc-generate-nograph.txt'), run.stdout);
    writeFileSync(join(work, 'qalc-generate-merged.log'), `cuda backend: NVIDIA H200 (compute 9.0), …\n${run.stderr}${describeDecodeGraph({ mode: 'graph', nodes: 579, capturedAt: 3, replays: 137 })}\n`);
    writeFileSync(join(work, 'transformers.json'), JSON.stringify({ system: 'transformers-generate-bf16', transformers: '5.17.0', tokens_per_second: 31.5, peak_bytes: 13.6e9, generated: [128, 128, 128] }) + '\n');
    const parsed = parseQalcLog(run.stderr)!;
    expect(parsed.tokens).toBe(40);
    expect(parsed.tokensPerSecond).toBeCloseTo(40 / parsed.seconds!, 6);
    const report = buildReport(work);
    expect(report.qalc!.warmUpSeconds).toBe(1.25);
    expect(report.qalc!.warmUpForwards).toBe(4);
    expect(report.qalc!.decodeStep).toEqual({ nodes: 834, capturedAt: 4, replays: 137 });
    expect(report.noGraph!.decodeStep).toEqual({ launched: 'QALC_CUDA_GRAPH=0' });
    expect(parseDecodeStep('no such line')).toBeUndefined();
    // 40 forward passes are fewer than the 64 the 7B run must reach: that check alone fails.
    expect(report.checks.map((c) => c.ok)).toEqual([true, true, false, true, true, true, true]);
    expect(report.merged!.decodeStep).toEqual({ nodes: 579, capturedAt: 4, replays: 137 });
    const table = markdown(report);
    expect(table).toContain('# Generation at the LLaMA-2-7B shape, batch 1 (abc1234)');
    expect(table).toMatch(/\| qalc generate --backend cuda .* \| [\d,.]+ \| [\d.]+ % \|/);
    expect(table).toContain('| transformers generate, bf16 (5.17.0, sdpa, dynamic cache) | 31.5 |');
    expect(table).toContain('- [x] stories260K: generate on cuda prints the cpu backend\'s greedy text');
    expect(table).toMatch(/\| qalc generate --backend cuda --merged .* \| [\d,.]+ \| [\d.]+ % \| [\d.]+ % \|/);
    expect(table).toMatch(/\| the same, QALC_CUDA_GRAPH=0 \(every op launched from the host each token\) \| [\d,.]+ \|/);
    expect(table).toContain('after 4 warm-up forwards of 1.25 s; the step a CUDA graph of 834 device calls, captured at forward 4, replayed 137 times.');

    // The two runs' texts must agree: a replay that drifted from the launched step fails.
    writeFileSync(join(work, 'qalc-generate-nograph.txt'), 'Once upon a time, another story\n');
    expect(buildReport(work).checks[4]!.ok).toBe(false);
    writeFileSync(join(work, 'qalc-generate-nograph.txt'), run.stdout);

    writeFileSync(join(work, 'stories-cuda.txt'), 'Once upon a time, another story\n');
    expect(buildReport(work).checks[0]!.ok).toBe(false);
    writeFileSync(join(work, 'qalc-generate.log'), 'qalc generate: the cuda backend cannot run here: no GPU\n');
    const failed = buildReport(work);
    expect(failed.qalc!.failed).toContain('cannot run here');
    expect(markdown(failed)).toContain('qalc: qalc generate: the cuda backend cannot run here: no GPU');
  });
});
