// The loss-curve run's record (loss-curve.sh): the run killed with SIGKILL and the same run after
// --resume, as Markdown on stdout. The steps the killed run logged past its last checkpoint are
// trained again after the resume; they must be the same numbers (a resumed run is the run it
// continues), and the curve must be finite and falling.
//
//   node loss-curve-report.mjs FIRST.jsonl RESUMED.jsonl SUMMARY.json COMMIT LR
import { readFileSync } from 'node:fs';

/** train.jsonl's step records, in order; a torn last line (the kill) is left out. */
export function readSteps(path) {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter((l) => l.trim()).flatMap((l) => {
    try {
      const r = JSON.parse(l);
      return typeof r.step === 'number' ? [r] : [];
    } catch {
      return [];
    }
  });
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * What the record says, from the two logs and the step the resume began at (summary.json's
 * resumedFrom): the re-trained steps compared, the curve in windows of `window` steps.
 */
export function lossCurveReport(first, resumed, resumedFrom, window = 25) {
  const firstLast = first.at(-1)?.step ?? 0;
  const byStep = new Map(resumed.map((r) => [r.step, r]));
  // Steps the killed run finished that the resumed run trained again (past its checkpoint).
  const overlap = first.filter((f) => f.step > resumedFrom && byStep.has(f.step));
  const differing = overlap.filter((f) => byStep.get(f.step).loss !== f.loss || byStep.get(f.step).grad_norm !== f.grad_norm);
  const losses = resumed.map((r) => r.loss);
  const finite = losses.every(Number.isFinite);
  const windows = [];
  for (let start = 0; start < resumed.length; start += window) {
    const part = resumed.slice(start, start + window);
    windows.push({ from: part[0].step, to: part.at(-1).step, loss: mean(part.map((r) => r.loss)), heldOut: part.filter((r) => r.eval_loss !== undefined).map((r) => r.eval_loss) });
  }
  const steady = resumed.slice(5).map((r) => r.seconds).sort((a, b) => a - b);
  return { firstLast, resumedFrom, overlap: overlap.length, differing: differing.length, finite, windows, steps: resumed.length, stepSeconds: steady[Math.floor(steady.length / 2)] };
}

function main([firstPath, resumedPath, summaryPath, commit = 'unknown', lr = '?']) {
  const first = readSteps(firstPath), resumed = readSteps(resumedPath);
  if (resumed.length === 0) {
    console.log(`# The 7B shape's loss curve (commit ${commit}): no steps in ${resumedPath}`);
    process.exitCode = 1;
    return;
  }
  let resumedFrom = Number.NaN;
  try {
    resumedFrom = JSON.parse(readFileSync(summaryPath, 'utf8')).resumedFrom ?? Number.NaN;
  } catch {
    // no summary: the resumed run did not finish; the overlap is then unknown
  }
  const r = lossCurveReport(first, resumed, resumedFrom);
  const lines = [
    `# The 7B shape's loss curve, killed and resumed (commit ${commit})`, '',
    `LLaMA-2-7B shape, 32 blocks, random weights, INT4 g32 QA-LoRA r64 on all 7 projections, bf16, sequence 2048, batch 1, lr ${lr} (warm-up 20, cosine), ` +
      `\`qalc train --random-weights --backend cuda\`, killed with SIGKILL after step ${r.firstLast}, then \`--resume\`.`, '',
    `- The killed run logged ${first.length} steps; the resumed run's log has ${r.steps} (it keeps the steps up to its checkpoint and trains on from there).`,
    `- Resumed from the checkpoint of step ${r.resumedFrom}. Steps trained twice (after it, before the kill): ${r.overlap}; of those with another loss or gradient norm after the resume: ${r.differing}.`,
    `- Every loss finite: ${r.finite ? 'yes' : 'NO'}. Median step after the first five: ${r.stepSeconds !== undefined ? `${(r.stepSeconds * 1000).toFixed(1)} ms` : '—'}.`, '',
    '| steps | mean training loss | held-out loss |', '|---|---:|---:|',
    ...r.windows.map((w) => `| ${w.from}–${w.to} | ${w.loss.toFixed(4)} | ${w.heldOut.map((x) => x.toFixed(4)).join(', ')} |`),
  ];
  console.log(lines.join('\n'));
}

if (import.meta.url === `file://${process.argv[1]}`) main(process.argv.slice(2));
