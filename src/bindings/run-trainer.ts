// What a generated train.mts calls: the arguments it accepts, the run, and errors printed the
// way the qalc command prints them (a line for a problem with the input, never a stack trace).
// The backend is chosen as `qalc train` chooses it (src/runtime/backend.ts): --backend, else
// the spec's train.backend, else cpu.
import { parseArgs } from 'node:util';
import { isInputError } from '../diagnostics/input-errors.ts';
import type { Plan } from '../plan/plan.ts';
import { BACKENDS, chooseBackend, requestedBackend, UnknownBackendError, type Backend } from '../runtime/backend.ts';
import { train } from '../train/trainer.ts';

export const TRAINER_USAGE = `usage: train.mts [--backend ${BACKENDS.join('|')}] [--kernels DIR] [--steps N] [--out DIR] [--resume]`;

export async function runTrainer(plan: Plan, specDir: string, defaultOut: string, argv: string[] = process.argv.slice(2)): Promise<number> {
  let values: { backend?: string; kernels?: string; steps?: string; out?: string; resume?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { backend: { type: 'string' }, kernels: { type: 'string' }, steps: { type: 'string' }, out: { type: 'string' }, resume: { type: 'boolean' } },
    }));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${TRAINER_USAGE}\n`);
    return 1;
  }
  const steps = values.steps === undefined ? undefined : Number(values.steps);
  if (steps !== undefined && !(Number.isInteger(steps) && steps >= 1)) {
    process.stderr.write(`--steps must be a positive integer, not '${values.steps}'\n`);
    return 1;
  }
  let chosen: Backend;
  try {
    chosen = await chooseBackend(requestedBackend(plan, values.backend), plan, values.kernels ? { kernelDir: values.kernels } : {});
  } catch (e) {
    if (e instanceof UnknownBackendError) {
      process.stderr.write(`${e.message}\n${TRAINER_USAGE}\n`);
      return 1;
    }
    if (!isInputError(e)) throw e;
    process.stderr.write(`${plan.spec}: ${e.message}\n`);
    return 1;
  }
  if (chosen.notice) process.stderr.write(`${chosen.notice}\n`);
  try {
    const summary = await train({ plan, specDir, out: values.out ?? defaultOut, ...(steps ? { steps } : {}), resume: values.resume === true, ops: chosen.ops });
    const report = chosen.report();
    if (report) process.stderr.write(`${report}\n`);
    process.stderr.write(`${plan.spec}: held-out loss ${summary.evalLossBefore.toFixed(4)} → ${summary.evalLossAfter.toFixed(4)} after ${summary.steps} steps\n`);
    return 0;
  } catch (e) {
    if (!isInputError(e)) throw e;
    process.stderr.write(`${plan.spec}: ${e.message}\n`);
    return 1;
  } finally {
    chosen.close();
  }
}
