// What a generated train.ts calls: the arguments it accepts, the run, and errors printed the
// way the qalc command prints them (a line for a problem with the input, never a stack trace).
import { parseArgs } from 'node:util';
import { isInputError } from '../cli/runtime-spec.ts';
import type { Plan } from '../plan/plan.ts';
import { train } from '../train/trainer.ts';
import { cpuBackend } from '../runtime/cpu/backend.ts';

export async function runTrainer(plan: Plan, specDir: string, defaultOut: string, argv: string[] = process.argv.slice(2)): Promise<number> {
  let values: { steps?: string; out?: string; resume?: boolean };
  try {
    ({ values } = parseArgs({ args: argv, options: { steps: { type: 'string' }, out: { type: 'string' }, resume: { type: 'boolean' } } }));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\nusage: train.ts [--steps N] [--out DIR] [--resume]\n`);
    return 1;
  }
  const steps = values.steps === undefined ? undefined : Number(values.steps);
  if (steps !== undefined && !(Number.isInteger(steps) && steps >= 1)) {
    process.stderr.write(`--steps must be a positive integer, not '${values.steps}'\n`);
    return 1;
  }
  const cpu = cpuBackend();
  if (cpu.notice) process.stderr.write(`${cpu.notice}\n`);
  try {
    const summary = await train({ plan, specDir, out: values.out ?? defaultOut, ...(steps ? { steps } : {}), resume: values.resume === true, ops: cpu.ops });
    process.stderr.write(`${plan.spec}: held-out loss ${summary.evalLossBefore.toFixed(4)} → ${summary.evalLossAfter.toFixed(4)} after ${summary.steps} steps\n`);
    return 0;
  } catch (e) {
    if (!isInputError(e)) throw e;
    process.stderr.write(`${plan.spec}: ${e.message}\n`);
    return 1;
  }
}
