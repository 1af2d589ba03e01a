import { defaultRunDir, planOf } from '../runtime-spec.ts';
import { UsageError, type Command } from '../usage.ts';

const BACKENDS = ['cpu', 'webgpu', 'cuda'] as const;

export const trainCommand: Command = {
  name: 'train',
  summary: 'Fine-tune the spec\'s model with QA-LoRA: quantize it as planned, train the adapters, and write train.jsonl, checkpoints, loss.svg and summary.json to the run folder. A killed run continues with --resume.',
  usage: 'qalc train SPEC [--backend cpu] [--steps N] [--out DIR] [--resume]',
  options: {
    backend: { type: 'string' },
    steps: { type: 'string' },
    out: { type: 'string' },
    resume: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
  optionHelp: {
    backend: 'cpu (the default); webgpu and cuda come with the generated bindings',
    steps: 'optimizer steps (default: the spec\'s train.steps)',
    out: 'run folder (default: generated/<spec>/run)',
    resume: 'continue the run in the folder from its last checkpoint',
    help: 'show this help',
  },
  async run(positionals, values) {
    if (positionals.length !== 1) throw new UsageError('train takes exactly one spec file', 'train');
    const steps = values.steps === undefined ? undefined : Number(values.steps);
    if (steps !== undefined && !(Number.isInteger(steps) && steps >= 1)) throw new UsageError(`--steps must be a positive integer, not '${String(values.steps)}'`, 'train');
    const loaded = await planOf(positionals[0]!, 'train');
    if (typeof loaded === 'number') return loaded;
    const backend = (values.backend as string | undefined) ?? String(loaded.plan.train?.backend ?? 'cpu');
    if (!(BACKENDS as readonly string[]).includes(backend)) throw new UsageError(`unknown backend '${backend}': expected ${BACKENDS.join(', ')}`, 'train');
    if (backend !== 'cpu') {
      process.stderr.write(`qalc train: the ${backend} backend is not available yet (it runs the generated kernels, which are still being built); use --backend cpu\n`);
      return 1;
    }
    const { train } = await import('../../train/trainer.ts');
    const { cpuBackend } = await import('../../runtime/cpu/backend.ts');
    const cpu = cpuBackend();
    if (cpu.notice) process.stderr.write(`${cpu.notice}\n`);
    const out = (values.out as string | undefined) ?? defaultRunDir(loaded.plan);
    const summary = train({ plan: loaded.plan, specDir: loaded.specDir, out, ...(steps ? { steps } : {}), resume: values.resume === true, ops: cpu.ops });
    process.stderr.write(
      `${loaded.plan.spec}: ${summary.steps} steps${summary.resumedFrom !== null ? ` (resumed at ${summary.resumedFrom})` : ''} in ${summary.seconds.toFixed(1)} s, ` +
      `${Math.round(summary.tokensPerSecond)} tokens/s; held-out loss ${summary.evalLossBefore.toFixed(4)} → ${summary.evalLossAfter.toFixed(4)} ` +
      `(perplexity ${Math.exp(summary.evalLossBefore).toFixed(2)} → ${Math.exp(summary.evalLossAfter).toFixed(2)})\n` +
      `wrote ${out}/train.jsonl, checkpoint.safetensors, loss.svg, summary.json\n`);
    return 0;
  },
};
