// Compares two runs of `qalc train` step by step (train.jsonl, summary.json of each run folder)
// and prints a markdown table: loss per step, relative difference, held-out losses, speed.
//   node compare-runs.mjs RUN_A RUN_B [LABEL_A LABEL_B]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const [dirA, dirB, labelA = 'cpu', labelB = 'cuda'] = process.argv.slice(2);
const read = (dir) => readFileSync(join(dir, 'train.jsonl'), 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
const summary = (dir) => JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
const a = read(dirA), b = read(dirB), sa = summary(dirA), sb = summary(dirB);
const rel = (x, y) => Math.abs(x - y) / Math.abs(x);
const lines = [
  `| step | loss ${labelA} | loss ${labelB} | rel. diff | grad norm ${labelA} | grad norm ${labelB} | held-out ${labelA} | held-out ${labelB} |`,
  '|---:|---:|---:|---:|---:|---:|---:|---:|',
  `| 0 | | | | | | ${sa.evalLossBefore.toFixed(5)} | ${sb.evalLossBefore.toFixed(5)} |`,
];
let worst = 0, worstEval = rel(sa.evalLossBefore, sb.evalLossBefore);
for (let i = 0; i < Math.min(a.length, b.length); i++) {
  const x = a[i], y = b[i];
  const d = rel(x.loss, y.loss);
  worst = Math.max(worst, d);
  if (x.eval_loss !== undefined) worstEval = Math.max(worstEval, rel(x.eval_loss, y.eval_loss));
  lines.push(`| ${x.step} | ${x.loss.toFixed(5)} | ${y.loss.toFixed(5)} | ${d.toExponential(2)} | ${x.grad_norm.toFixed(4)} | ${y.grad_norm.toFixed(4)} | ` +
    `${x.eval_loss?.toFixed(5) ?? ''} | ${y.eval_loss?.toFixed(5) ?? ''} |`);
}
lines.push('', `max relative difference of the training loss over ${Math.min(a.length, b.length)} steps: ${worst.toExponential(2)}; of the held-out loss: ${worstEval.toExponential(2)}`);
lines.push(`tokens/s: ${labelA} ${Math.round(sa.tokensPerSecond)}, ${labelB} ${Math.round(sb.tokensPerSecond)}; seconds: ${sa.seconds.toFixed(1)}, ${sb.seconds.toFixed(1)}`);
console.log(lines.join('\n'));
