// The report of test/bench/cuda/train/run.sh: reads what the run left in WORK (the PyTorch
// anchors' and the GEMM ceiling's JSON lines, qalc's run folder, memory samples) and writes
// OUT/train-bench.json and OUT/train-bench.md, then prints the Markdown table. Plain JavaScript
// (no TypeScript, no packages) so the carried node binary runs it on the GPU machine as is;
// test/bench/cuda/train/report.test.ts runs it on a tiny cpu run here.
//
//   node report.mjs WORK OUT
//
// WORK holds (each optional: a part that failed is reported as missing, the others stand):
//   commit.txt                       the commit the benchmark was built from (prepare.sh)
//   gemm.json                        reference.py gemm
//   peft-lora-l<L>.json, qalora-eager-l<L>.json   reference.py at L blocks
//   qalc-l<L>/summary.json, train.jsonl           qalc train's run folder at L blocks
//   qalc-l<L>.log                    qalc's stderr (its backend report line is quoted)
//   qalc-l<L>.memory                 nvidia-smi memory.used samples (MiB, one a line), taken every
//                                    0.2 s while qalc ran, the first line the idle baseline
//
// Model FLOPs (the same count for every system, so MFU compares like with like): the base is
// frozen, so a token costs the forward 2·N and the input gradient 2·N of the linear layers
// (N = every block's q, k, v, o, gate, up, down weights plus lm_head; no weight gradient), plus
// causal attention: QKᵀ and PV are 4·T·dim per token and layer forward, their input gradients
// 8·T·dim, halved by the causal mask: 6·T·dim·layers. Adapter FLOPs are not counted.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const DATASHEET_BF16_TFLOPS = 989; // H200 SXM dense bf16
export const LLAMA2_7B = { dim: 4096, hidden: 11008, kvDim: 4096, vocab: 32000, layers: 32 };
export const TARGETS = { vsQaloraReference: 2, vsPeftLora: 1.5, mfu: 0.45, peakVsQaloraReference: 0.6 };

/** Model FLOPs of one trained token (see the header). */
export function flopsPerToken({ dim, hidden, kvDim, vocab, layers }, seq) {
  const linear = layers * (2 * dim * dim + 2 * dim * kvDim + 3 * dim * hidden) + vocab * dim;
  return { linearParameters: linear, linear: 4 * linear, attention: 6 * seq * dim * layers, total: 4 * linear + 6 * seq * dim * layers };
}

/** QA-LoRA's adapter parameters, A [K/g, r] and B [r, N] on every projection (qalc trains exactly these). */
export function qaloraTrainable({ dim, hidden, kvDim, layers }, group = 32, rank = 64) {
  const projections = [[dim, dim], [dim, kvDim], [dim, kvDim], [dim, dim], [dim, hidden], [dim, hidden], [hidden, dim]];
  return layers * projections.reduce((sum, [k, n]) => sum + (k / group) * rank + rank * n, 0);
}

/** A JSON file (summary.json), or the JSON last line of a log (reference.py's stdout); undefined if neither. */
function readJson(path) {
  if (!existsSync(path)) return undefined;
  const text = readFileSync(path, 'utf8').trim();
  for (const candidate of [text, text.split('\n').at(-1)]) {
    try {
      return JSON.parse(candidate);
    } catch {
      // not this one
    }
  }
  return undefined;
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]; };

/** Peak minus the idle baseline of nvidia-smi's memory.used samples (MiB), in bytes. */
export function sampledPeakBytes(text) {
  const mib = text.split('\n').map((l) => Number.parseFloat(l)).filter(Number.isFinite);
  if (mib.length < 2) return undefined;
  return (Math.max(...mib.slice(1)) - mib[0]) * 2 ** 20;
}

/**
 * The step split of a second, profiled qalc run (QALC_CUDA_PROFILE) in qalc-l<L>-profiled/: the
 * median over steps 2… of each kind's milliseconds, as the anchors' classes: gemm = the linear
 * layers' kernels, lm_head and cuBLAS. With events (the default where the driver has them) each
 * kind is GPU time and idle the GPU waiting for the host; with waits (every call waited for, so
 * its total is not the plain run's) host is the JavaScript between device calls.
 */
export function profiledSplit(work, layers) {
  const file = join(work, `qalc-l${layers}-profiled`, 'train.jsonl');
  if (!existsSync(file)) return {};
  const steps = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l) => { try { return JSON.parse(l); } catch { return undefined; } }).filter((r) => r?.profile_ms);
  if (steps.length === 0) return {};
  const steady = steps.length > 1 ? steps.slice(1) : steps;
  const kind = (k) => median(steady.map((r) => r.profile_ms[k] ?? 0));
  const events = steady.some((r) => r.profile_ms.idle !== undefined);
  const medianOver = `median over its steps ${steps.length > 1 ? `2–${steps.length}` : '1'}`;
  return {
    step_ms_by_class: { gemm: kind('linear') + kind('lm_head') + kind('gemm'), attention: kind('attention'), other: kind('other') + kind('copy'), ...(events ? { idle: kind('idle') } : { host: kind('host') }) },
    step_ms_by_kind: Object.fromEntries(['linear', 'lm_head', 'gemm', 'attention', 'other', 'copy', events ? 'idle' : 'host'].map((k) => [k, kind(k)])),
    step_split_how: events
      ? `a second run with QALC_CUDA_PROFILE=events (CUDA events around every device call: GPU time, the host not made to wait), ${medianOver}; gemm = linear + lm_head + cuBLAS, other = the other model ops + copies; idle = the GPU with nothing queued, waiting for the host`
      : `a second run with QALC_CUDA_PROFILE=waits (each device call waited for and timed by the host), ${medianOver}; gemm = linear + lm_head + cuBLAS, other = the other model ops + copies; host = JavaScript between device calls`,
  };
}

/**
 * How qalc's steps ran (src/runtime/cuda/step-graph.ts): summary.json's stepGraph line, and the
 * median step time of the steps (2…) whose backward was replayed from the CUDA graph beside that
 * of those launched op by op (traced, or QALC_CUDA_GRAPH=0's launched); the step that captured it
 * is in neither.
 */
export function stepGraphResult(summary, steady) {
  const medianOf = (runs) => {
    const chosen = steady.filter((r) => runs.includes(r.backward));
    return chosen.length === 0 ? undefined : { step_ms_median: median(chosen.map((r) => r.seconds)) * 1000, steps: chosen.length };
  };
  const replayed = medianOf(['replayed']);
  const launched = medianOf(['launched', 'traced']);
  return {
    ...(summary?.stepGraph !== undefined ? { step_graph: summary.stepGraph } : {}),
    ...(replayed ? { replayed_step_ms_median: replayed.step_ms_median, replayed_steps: replayed.steps } : {}),
    ...(launched ? { launched_step_ms_median: launched.step_ms_median, launched_steps: launched.steps } : {}),
  };
}

/** qalc's numbers from its run folder: summary.json, else train.jsonl alone (a run stopped early). */
export function qalcResult(work, layers) {
  const dir = join(work, `qalc-l${layers}`);
  const summary = readJson(join(dir, 'summary.json'));
  const steps = existsSync(join(dir, 'train.jsonl'))
    ? readFileSync(join(dir, 'train.jsonl'), 'utf8').split('\n').filter((l) => l.trim()).map((l) => { try { return JSON.parse(l); } catch { return undefined; } }).filter(Boolean)
    : [];
  if (!summary && steps.length === 0) return undefined;
  // Step 1 loads and allocates what every later step reuses: the steady rate leaves it out.
  const steady = steps.length > 1 ? steps.slice(1) : steps;
  const log = existsSync(join(work, `qalc-l${layers}.log`)) ? readFileSync(join(work, `qalc-l${layers}.log`), 'utf8') : '';
  const device = summary?.device;
  const memory = existsSync(join(work, `qalc-l${layers}.memory`)) ? sampledPeakBytes(readFileSync(join(work, `qalc-l${layers}.memory`), 'utf8')) : undefined;
  const peak = device?.peakBytes !== undefined
    ? { bytes: device.peakBytes, how: 'qalc summary.json device.peakBytes' }
    : memory !== undefined ? { bytes: memory, how: 'nvidia-smi memory.used, peak of 0.2 s samples minus the idle baseline (includes the CUDA context)' } : undefined;
  return {
    layers,
    steps: steps.length,
    tokens_per_s: median(steady.map((r) => r.tokens_per_s)),
    tokens_per_s_how: `median over steps ${steps.length > 1 ? `2–${steps.length}` : '1'} of train.jsonl`,
    summary_tokens_per_s: summary?.tokensPerSecond,
    step_ms_median: median(steady.map((r) => r.seconds)) * 1000,
    losses: steps.map((r) => r.loss),
    finite: steps.every((r) => Number.isFinite(r.loss)),
    complete: summary !== undefined,
    ...(peak ? { peak_bytes: peak.bytes, peak_how: peak.how } : {}),
    // Both when both exist: qalc's own count of its allocations, and what the driver saw.
    ...(memory !== undefined ? { peak_sampled_bytes: memory } : {}),
    ...(device ? { device } : {}),
    ...profiledSplit(work, layers),
    ...stepGraphResult(summary, steady),
    backend_report: log.split('\n').filter((l) => /^cuda: |kernels \(manifest|every op on the GPU/.test(l)).slice(0, 4),
  };
}

const gib = (bytes) => (bytes === undefined ? '—' : `${(bytes / 2 ** 30).toFixed(1)} GiB`);
const fmt = (x, digits = 0) => (x === undefined || !Number.isFinite(x) ? '—' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
const pct = (x) => (x === undefined || !Number.isFinite(x) ? '—' : `${(100 * x).toFixed(1)} %`);
const ratio = (a, b) => (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? undefined : a / b);

/** The whole report as one object: every system at every depth it ran, with MFU and ratios. */
export function buildReport(work, { seq = 2048, arch = LLAMA2_7B } = {}) {
  const commit = existsSync(join(work, 'commit.txt')) ? readFileSync(join(work, 'commit.txt'), 'utf8').trim() : 'unknown';
  const gemm = readJson(join(work, 'gemm.json'));
  const ceiling = gemm?.tflops;
  const depths = new Set([arch.layers]);
  for (const name of existsSync(work) ? readdirSync(work) : []) {
    const m = /-l(\d+)(?:\.json)?$/.exec(name);
    if (m) depths.add(Number(m[1]));
  }
  const rows = [];
  const withMfu = (system, layers, result) => {
    const flops = flopsPerToken({ ...arch, layers }, seq);
    const achieved = result.tokens_per_s * flops.total / 1e12;
    return {
      system, layers, ...result, flops_per_token: flops.total,
      model_tflops: achieved, mfu_vs_measured: ceiling ? achieved / ceiling : undefined, mfu_vs_datasheet: achieved / DATASHEET_BF16_TFLOPS,
    };
  };
  for (const layers of [...depths].sort((a, b) => b - a)) {
    for (const mode of ['peft-lora', 'qalora-eager']) {
      const r = readJson(join(work, `${mode}-l${layers}.json`));
      if (r) rows.push(withMfu(mode, layers, { ...r, peak_bytes: r.peak_allocated_bytes, peak_how: 'torch.cuda.max_memory_allocated' }));
    }
    const q = qalcResult(work, layers);
    if (q) rows.push(withMfu('qalc', layers, { ...q, trainable_parameters: qaloraTrainable({ ...arch, layers }), trainable_how: 'from the spec\'s shapes (r 64, g 32)' }));
  }
  const comparisons = [];
  for (const layers of new Set(rows.filter((r) => r.system === 'qalc').map((r) => r.layers))) {
    const at = (system) => rows.find((r) => r.system === system && r.layers === layers);
    const qalc = at('qalc'), qalora = at('qalora-eager'), peft = at('peft-lora');
    comparisons.push({
      layers,
      vs_qalora_reference: ratio(qalc.tokens_per_s, qalora?.tokens_per_s),
      vs_peft_lora: ratio(qalc.tokens_per_s, peft?.tokens_per_s),
      mfu_vs_measured: qalc.mfu_vs_measured, mfu_vs_datasheet: qalc.mfu_vs_datasheet,
      peak_vs_qalora_reference: ratio(qalc.peak_bytes, qalora?.peak_bytes),
    });
  }
  return {
    commit, seq, batch: 1, arch,
    gemm_ceiling_tflops: ceiling, datasheet_tflops: DATASHEET_BF16_TFLOPS,
    flops_counting: 'model FLOPs per token = 4·N (forward 2·N + input gradient 2·N of the frozen linear layers, N = the blocks\' 7 projections + lm_head; no weight gradient) + 6·T·dim·layers (causal attention: QKᵀ and PV forward 4·T·dim, their input gradients 8·T·dim, halved by the mask); adapters not counted',
    targets: TARGETS, rows, comparisons,
    missing: missingParts(work, depths),
  };
}

function missingParts(work, depths) {
  const missing = [];
  if (!existsSync(join(work, 'gemm.json'))) missing.push('gemm ceiling');
  for (const layers of depths) {
    for (const mode of ['peft-lora', 'qalora-eager']) if (!existsSync(join(work, `${mode}-l${layers}.json`)) && existsSync(join(work, `${mode}-l${layers}.err`))) missing.push(`${mode} at ${layers} blocks (see log.txt)`);
    if (existsSync(join(work, `qalc-l${layers}.log`)) && !existsSync(join(work, `qalc-l${layers}`, 'summary.json'))) missing.push(`qalc at ${layers} blocks: no summary.json (stopped or failed; see log.txt)`);
  }
  return missing;
}

const NAMES = {
  'peft-lora': 'transformers (sdpa) + PEFT LoRA r64, all 7 projections, bf16 base',
  'qalora-eager': 'PyTorch eager QA-LoRA (INT4 g32 dequantized in forward and backward, pooled adapter r64)',
  qalc: 'qalc train --backend cuda (QA-LoRA INT4 g32 r64)',
};

export function markdown(report) {
  const lines = [];
  lines.push(`# 7B-shaped QA-LoRA fine-tune on the H200 (commit ${report.commit})`, '');
  lines.push(`LLaMA-2-7B shape (dim 4096, hidden 11008, 32 heads, vocab 32000), random weights, bf16, sequence ${report.seq}, batch 1. ` +
    `bf16 GEMM ceiling measured in this run (8192³): ${fmt(report.gemm_ceiling_tflops, 0)} TFLOP/s; datasheet ${report.datasheet_tflops} TFLOP/s.`, '');
  lines.push(`MFU: ${report.flops_counting}.`, '');
  lines.push('| system | blocks | tokens/s | step ms (median) | peak GPU memory | trainable parameters | MFU (measured ceiling) | MFU (989) | GPU time by class (ms: gemm / attention / other) |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const r of report.rows) {
    const split = r.step_ms_by_class
      ? `${fmt(r.step_ms_by_class.gemm, 1)} / ${fmt(r.step_ms_by_class.attention, 1)} / ${fmt(r.step_ms_by_class.other, 1)}${r.step_ms_by_class.host !== undefined ? ` (+ host ${fmt(r.step_ms_by_class.host, 1)})` : ''}${r.step_ms_by_class.idle !== undefined ? ` (+ GPU idle ${fmt(r.step_ms_by_class.idle, 1)})` : ''}`
      : '—';
    const trainable = r.trainable_parameters === undefined ? '—' : `${(r.trainable_parameters / 1e6).toFixed(1)} M`;
    lines.push(`| ${NAMES[r.system]} | ${r.layers} | ${fmt(r.tokens_per_s)} | ${fmt(r.step_ms_median, 1)} | ${gib(r.peak_bytes)} | ${trainable} | ${pct(r.mfu_vs_measured)} | ${pct(r.mfu_vs_datasheet)} | ${split} |`);
  }
  lines.push('');
  if (report.comparisons.length > 0) {
    lines.push(`Targets (issue 11): ≥ ${TARGETS.vsQaloraReference}× the QA-LoRA reference's tokens/s, ≥ ${TARGETS.vsPeftLora}× PEFT LoRA's, MFU ≥ ${100 * TARGETS.mfu} %, peak ≤ ${TARGETS.peakVsQaloraReference}× the QA-LoRA reference's; qalc against the anchors at the same depth:`, '');
    lines.push('| blocks | qalc / QA-LoRA reference (≥ 2) | qalc / PEFT LoRA (≥ 1.5) | MFU, measured ceiling (≥ 45 %) | MFU, 989 | peak / QA-LoRA reference (≤ 0.6) |');
    lines.push('|---:|---:|---:|---:|---:|---:|');
    for (const c of report.comparisons) {
      lines.push(`| ${c.layers} | ${fmt(c.vs_qalora_reference, 2)} | ${fmt(c.vs_peft_lora, 2)} | ${pct(c.mfu_vs_measured)} | ${pct(c.mfu_vs_datasheet)} | ${fmt(c.peak_vs_qalora_reference, 2)} |`);
    }
    lines.push('');
  }
  const notes = report.rows.filter((r) => r.peak_how).map((r) => `${r.system} at ${r.layers} blocks: peak memory is ${r.peak_how}`);
  for (const r of report.rows.filter((x) => x.system === 'qalc')) {
    if (r.peak_sampled_bytes !== undefined && r.peak_how !== undefined && !r.peak_how.startsWith('nvidia-smi')) {
      notes.push(`qalc at ${r.layers} blocks: nvidia-smi saw ${gib(r.peak_sampled_bytes)} at the most above the idle baseline (0.2 s samples, the CUDA context included)`);
    }
    notes.push(`qalc at ${r.layers} blocks: tokens/s is the ${r.tokens_per_s_how} (summary.json over all steps: ${fmt(r.summary_tokens_per_s)}); losses ${r.losses.map((x) => x.toFixed(4)).join(', ')}${r.complete ? '' : '; the run did not finish'}`);
    if (r.step_split_how) notes.push(`qalc at ${r.layers} blocks: GPU time by class from ${r.step_split_how}; by kind (ms): ${Object.entries(r.step_ms_by_kind).map(([k, v]) => `${k} ${fmt(v, 1)}`).join(', ')}`);
    if (r.step_graph !== undefined) {
      const times = [r.replayed_steps ? `${fmt(r.replayed_step_ms_median, 1)} ms a step replayed (median of ${r.replayed_steps})` : undefined,
        r.launched_steps ? `${fmt(r.launched_step_ms_median, 1)} ms launched op by op (median of ${r.launched_steps})` : undefined].filter(Boolean);
      notes.push(`qalc at ${r.layers} blocks: ${r.step_graph}${times.length > 0 ? `; steps 2…: ${times.join(', ')}` : ''}`);
    }
    for (const line of r.backend_report) notes.push(`qalc said: ${line}`);
  }
  for (const r of report.rows.filter((x) => x.layer_check)) {
    const c = r.layer_check;
    notes.push(`${r.system} at ${r.layers} blocks, its first QaLoraLinear against its definition: ${c.ok ? 'ok' : 'FAILED'} (max |Ŵ − W| ${c.max_error_in_steps.toFixed(3)} steps; relative error of y, dx, dA, dB against float32 autograd ${c.relative_error_y_dx_dA_dB.map((e) => e.toExponential(1)).join(', ')})`);
  }
  for (const r of report.rows.filter((x) => x.system !== 'qalc')) {
    if (r.attn_implementation !== undefined && r.attn_implementation !== 'sdpa') notes.push(`${r.system} at ${r.layers} blocks ran attention '${r.attn_implementation}', not sdpa`);
    if (r.finite === false) notes.push(`${r.system} at ${r.layers} blocks: a non-finite loss`);
  }
  for (const m of report.missing) notes.push(`missing: ${m}`);
  if (notes.length > 0) lines.push(...notes.map((n) => `- ${n}`), '');
  return lines.join('\n');
}

async function main(argv) {
  const [work, out] = argv;
  if (!work || !out) {
    process.stderr.write('usage: node report.mjs WORK OUT\n');
    return 2;
  }
  const report = buildReport(work);
  writeFileSync(join(out, 'train-bench.json'), JSON.stringify(report, null, 2) + '\n');
  const text = markdown(report);
  writeFileSync(join(out, 'train-bench.md'), text + '\n');
  process.stdout.write(text + '\n');
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.exitCode = await main(process.argv.slice(2));
