// The report of test/bench/cuda/generate/run.sh: reads what the run left in WORK and writes
// OUT/generate-bench.json and OUT/generate-bench.md, then prints the Markdown table. Plain
// JavaScript (no TypeScript, no packages) so the carried node binary runs it on the GPU machine;
// test/bench/cuda/generate/report.test.ts runs it on made-up parts here.
//
//   node report.mjs WORK OUT
//
// WORK holds (each optional: a part that failed is reported as missing, the others stand):
//   commit.txt                          the commit the benchmark was built from (prepare.sh)
//   stories-cpu.txt, stories-cuda.txt   qalc generate's text of the stories260K run on each backend
//   stories-cuda.log                    its stderr on cuda
//   qalc-generate.log, .txt            qalc generate's stderr at the 7B shape (its tokens/s line,
//                                       its decode step line: replayed from a CUDA graph) and text
//   qalc-generate-nograph.log, .txt    the same with QALC_CUDA_GRAPH=0 (every op launched from the
//                                       host each token): the text must be the graph run's
//   qalc-generate-merged.log, .txt     the same with --merged: the adapters folded into float
//                                       zeros, decoded on the merged plan's kernels (no adapter term)
//   qalc-generate-profiled.log          the same run profiled (QALC_CUDA_PROFILE=events)
//   transformers.json                   reference.py's JSON line
//
// The roofline: a batch-1 decode step reads every weight once, so tokens/s ≤ bandwidth / bytes a
// token. The bytes are the merged W4 g32 model's (4-bit codes, a 16-bit scale and zero a
// group of 32, the bf16 lm_head; the embedding's one row and the KV cache are noise at these
// lengths), and, beside them, what qalc reads today (float32 scales and zeros, and the run's
// float32 adapters A and B unmerged); transformers' bf16 model reads 2 bytes a weight.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const LLAMA2_7B = { dim: 4096, hidden: 11008, kvDim: 4096, vocab: 32000, layers: 32 };
/** H200 SXM HBM3e datasheet, and the device copy measured there (PLATFORM.md). */
export const BANDWIDTH = { datasheet: 4.8e12, measuredCopy: 4.27e12 };
export const TARGET = { tokensPerSecond: 800, rooflineFraction: 0.75 };

/** Bytes a batch-1 token reads: the merged W4 g32 model, qalc's layout with its adapters, and the bf16 model. */
export function bytesPerToken({ dim, hidden, kvDim, vocab, layers }, group = 32, rank = 64) {
  const projections = [[dim, dim], [dim, kvDim], [dim, kvDim], [dim, dim], [dim, hidden], [dim, hidden], [hidden, dim]];
  const weights = layers * projections.reduce((sum, [k, n]) => sum + k * n, 0);
  const adapters = layers * projections.reduce((sum, [k, n]) => sum + (k / group) * rank + rank * n, 0);
  const lmHead = 2 * vocab * dim;
  return {
    mergedW4: weights * (0.5 + 4 / group) + lmHead,
    qalcToday: weights * (0.5 + 8 / group) + 4 * adapters + lmHead,
    qalcMerged: weights * (0.5 + 8 / group) + lmHead,
    bf16: 2 * weights + lmHead,
  };
}

const read = (path) => (existsSync(path) ? readFileSync(path, 'utf8') : undefined);

function readJson(path) {
  const text = read(path)?.trim();
  if (!text) return undefined;
  try {
    return JSON.parse(text.split('\n').at(-1));
  } catch {
    return undefined;
  }
}

/** The decode step line: { nodes, capturedAt, replays } from a CUDA graph, or { launched: why } op by op; undefined without one. */
export function parseDecodeStep(text) {
  const graph = /^decode step: a CUDA graph of (\d+) device calls, captured at step (\d+) and replayed (\d+) times/m.exec(text);
  if (graph) return { nodes: Number(graph[1]), capturedAt: Number(graph[2]), replays: Number(graph[3]) };
  const launched = /^decode step: every op launched from the host each token \(no CUDA graph: (.*)\)$/m.exec(text);
  return launched ? { launched: launched[1] } : undefined;
}

/** qalc generate's stderr: tokens, prompt tokens, seconds, tokens/s, the warm-up, the device lines. */
export function parseQalcLog(text) {
  if (text === undefined) return undefined;
  const speed = /^generated (\d+) tokens \((\d+) of them the prompt\) in ([\d.]+) s: ([\d,]+) tokens\/s$/m.exec(text);
  if (!speed) return { failed: text.trim().split('\n').slice(-3).join(' / ') };
  const warmUp = /^warm-up: (\d+) forwards? \([^)]*\) ([\d.]+) s$/m.exec(text);
  const memory = /([\d.]+) MiB of device memory allocated at the most/.exec(text);
  const profile = /^profile \(QALC_CUDA_PROFILE[^)]*\): (.*)$/m.exec(text);
  return {
    tokens: Number(speed[1]), promptTokens: Number(speed[2]), seconds: Number(speed[3]),
    // From the count and the seconds (the printed rate is rounded).
    tokensPerSecond: Number(speed[1]) / Number(speed[3]),
    warmUpForwards: warmUp ? Number(warmUp[1]) : undefined,
    warmUpSeconds: warmUp ? Number(warmUp[2]) : undefined,
    decodeStep: parseDecodeStep(text),
    peakBytes: memory ? Number(memory[1]) * 2 ** 20 : undefined,
    profile: profile ? profile[1] : undefined,
    backend: /^cuda backend: .*$/m.exec(text)?.[0],
  };
}

export function buildReport(work) {
  const bytes = bytesPerToken(LLAMA2_7B);
  const rooflineOf = (b) => ({ datasheet: BANDWIDTH.datasheet / b, measuredCopy: BANDWIDTH.measuredCopy / b });
  const cpuText = read(join(work, 'stories-cpu.txt')), cudaText = read(join(work, 'stories-cuda.txt'));
  const stories = cpuText === undefined || cudaText === undefined || cudaText.trim() === ''
    ? { ok: false, reason: 'a stories260K generation is missing' }
    : { ok: cpuText === cudaText, cpu: cpuText.trim(), cuda: cudaText.trim(), speed: parseQalcLog(read(join(work, 'stories-cuda.log'))) };
  const qalc = parseQalcLog(read(join(work, 'qalc-generate.log')));
  const noGraph = parseQalcLog(read(join(work, 'qalc-generate-nograph.log')));
  const graphText = read(join(work, 'qalc-generate.txt')), noGraphText = read(join(work, 'qalc-generate-nograph.txt'));
  const profiled = parseQalcLog(read(join(work, 'qalc-generate-profiled.log')));
  const merged = parseQalcLog(read(join(work, 'qalc-generate-merged.log')));
  const transformers = readJson(join(work, 'transformers.json'));
  const checks = [
    { what: 'stories260K: generate on cuda prints the cpu backend\'s greedy text (a 4-step cuda run\'s adapters)', ok: stories.ok === true },
    { what: 'qalc generate at the 7B shape ran and printed its tokens/s', ok: qalc?.tokensPerSecond > 0 },
    { what: 'qalc generated at least half its steps (random weights may sample EOS early)', ok: qalc?.tokens >= 64 },
    { what: 'qalc replayed its decode step from a CUDA graph', ok: qalc?.decodeStep?.replays > 0 },
    { what: 'with QALC_CUDA_GRAPH=0 (every op from the host) qalc printed the graph run\'s text', ok: noGraph?.decodeStep?.launched !== undefined && graphText !== undefined && graphText.trim() !== '' && graphText === noGraphText },
    { what: 'transformers\' generate ran, every run its new tokens', ok: transformers?.tokens_per_second > 0 },
    { what: 'qalc generate --merged (the adapters folded into the zeros) ran from a CUDA graph', ok: merged?.tokensPerSecond > 0 && merged?.decodeStep?.replays > 0 },
  ];
  return {
    commit: read(join(work, 'commit.txt'))?.trim() ?? 'unknown',
    bytesPerToken: bytes,
    roofline: { mergedW4: rooflineOf(bytes.mergedW4), qalcToday: rooflineOf(bytes.qalcToday), qalcMerged: rooflineOf(bytes.qalcMerged), bf16: rooflineOf(bytes.bf16) },
    stories, qalc, noGraph, merged, profiled, transformers, checks,
    // The target is a merged model's: the merged run where there is one.
    target: { ...TARGET, met: Math.max(qalc?.tokensPerSecond ?? 0, merged?.tokensPerSecond ?? 0) >= TARGET.tokensPerSecond },
  };
}

const describeStep = (step) => step === undefined ? 'no decode step line'
  : step.replays !== undefined ? `the step a CUDA graph of ${step.nodes} device calls, captured at forward ${step.capturedAt}, replayed ${step.replays} times`
  : `every op launched from the host (${step.launched})`;

const fmt = (x, digits = 0) => (typeof x === 'number' && Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '—');
const pct = (x) => (typeof x === 'number' && Number.isFinite(x) ? `${(100 * x).toFixed(1)} %` : '—');

export function markdown(report) {
  const { qalc, transformers, roofline, bytesPerToken: bytes } = report;
  const gib = (b) => (typeof b === 'number' ? `${(b / 2 ** 30).toFixed(2)} GiB` : '—');
  const lines = [
    `# Generation at the LLaMA-2-7B shape, batch 1 (${report.commit})`,
    '',
    '| system | tokens/s | of the merged-W4 roofline (4.8 TB/s) | of its own weights\' roofline (4.8 TB/s) | peak memory | vs transformers |',
    '|---|---:|---:|---:|---:|---:|',
    `| qalc generate --backend cuda (INT4 g32 + rank-64 adapters, random weights) | ${fmt(qalc?.tokensPerSecond, 1)} | ${pct(qalc?.tokensPerSecond / roofline.mergedW4.datasheet)} | ${pct(qalc?.tokensPerSecond / roofline.qalcToday.datasheet)} | ${gib(qalc?.peakBytes)} | ${fmt(qalc?.tokensPerSecond / transformers?.tokens_per_second, 2)}× |`,
    `| the same, QALC_CUDA_GRAPH=0 (every op launched from the host each token) | ${fmt(report.noGraph?.tokensPerSecond, 1)} | ${pct(report.noGraph?.tokensPerSecond / roofline.mergedW4.datasheet)} | ${pct(report.noGraph?.tokensPerSecond / roofline.qalcToday.datasheet)} | ${gib(report.noGraph?.peakBytes)} | ${fmt(report.noGraph?.tokensPerSecond / transformers?.tokens_per_second, 2)}× |`,
    `| qalc generate --backend cuda --merged (the adapters folded into float zeros, no adapter term) | ${fmt(report.merged?.tokensPerSecond, 1)} | ${pct(report.merged?.tokensPerSecond / roofline.mergedW4.datasheet)} | ${pct(report.merged?.tokensPerSecond / roofline.qalcMerged.datasheet)} | ${gib(report.merged?.peakBytes)} | ${fmt(report.merged?.tokensPerSecond / transformers?.tokens_per_second, 2)}× |`,
    `| transformers generate, bf16 (${transformers?.transformers ?? '?'}, sdpa, dynamic cache) | ${fmt(transformers?.tokens_per_second, 1)} | ${pct(transformers?.tokens_per_second / roofline.mergedW4.datasheet)} | ${pct(transformers?.tokens_per_second / roofline.bf16.datasheet)} | ${gib(transformers?.peak_bytes)} | 1.00× |`,
    '',
    `Bytes a token: merged W4 g32 ${gib(bytes.mergedW4)} (roofline ${fmt(roofline.mergedW4.datasheet)} tokens/s at 4.8 TB/s, ${fmt(roofline.mergedW4.measuredCopy)} at the measured 4.27), ` +
      `qalc's layout today (float32 scales and zeros, float32 adapters) ${gib(bytes.qalcToday)} (${fmt(roofline.qalcToday.datasheet)}), merged in qalc's layout (float32 scales and zeros) ${gib(bytes.qalcMerged)} (${fmt(roofline.qalcMerged.datasheet)}), bf16 ${gib(bytes.bf16)} (${fmt(roofline.bf16.datasheet)}).`,
    `Target: ≥ ${TARGET.tokensPerSecond} tokens/s (${pct(TARGET.rooflineFraction)} of the merged-W4 roofline): ${report.target.met ? 'MET' : 'not met'}.`,
    qalc?.tokens !== undefined ? `qalc: ${qalc.tokens} forward passes (${qalc.promptTokens} the prompt's, one at a time) in ${fmt(qalc.seconds, 2)} s after ${fmt(qalc.warmUpForwards)} warm-up forwards of ${fmt(qalc.warmUpSeconds, 2)} s; ${describeStep(qalc.decodeStep)}.` : `qalc: ${qalc?.failed ?? 'no run'}`,
    report.noGraph?.tokens !== undefined ? `qalc, QALC_CUDA_GRAPH=0: ${report.noGraph.tokens} forward passes in ${fmt(report.noGraph.seconds, 2)} s; ${describeStep(report.noGraph.decodeStep)}.` : `qalc, QALC_CUDA_GRAPH=0: ${report.noGraph?.failed ?? 'no run'}`,
    report.merged?.tokens !== undefined ? `qalc --merged: ${report.merged.tokens} forward passes in ${fmt(report.merged.seconds, 2)} s; ${describeStep(report.merged.decodeStep)}.` : `qalc --merged: ${report.merged?.failed ?? 'no run'}`,
    report.profiled?.profile ? `qalc profiled: ${report.profiled.profile}` : 'qalc profiled: no profile',
    '',
    ...report.checks.map((c) => `- [${c.ok ? 'x' : ' '}] ${c.what}`),
  ];
  return lines.join('\n') + '\n';
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [work, out] = process.argv.slice(2);
  if (!work || !out) {
    console.error('usage: node report.mjs WORK OUT');
    process.exit(2);
  }
  const report = buildReport(work);
  writeFileSync(join(out, 'generate-bench.json'), JSON.stringify(report, null, 2) + '\n');
  const table = markdown(report);
  writeFileSync(join(out, 'generate-bench.md'), table);
  process.stdout.write(table);
  if (report.checks.some((c) => !c.ok)) process.exitCode = 1;
}
