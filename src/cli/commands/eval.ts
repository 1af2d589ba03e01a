import { join } from 'node:path';
import { chooseBackend, requestedBackend } from '../../runtime/backend.ts';
import { defaultRunDir, planOf } from '../runtime-spec.ts';
import { UsageError, type Command } from '../usage.ts';

export const evalCommand: Command = {
  name: 'eval',
  summary: 'Held-out loss and perplexity of the spec\'s model: quantized with the adapters of its run (or of none), or a merged model given with --model. Prints `loss L perplexity P`.',
  usage: 'qalc eval SPEC [--out DIR | --model MERGED_MODEL] [--batches N] [--backend cpu|webgpu|cuda] [--kernels DIR]',
  options: {
    backend: { type: 'string' },
    kernels: { type: 'string' },
    out: { type: 'string' },
    model: { type: 'string' },
    batches: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  optionHelp: {
    out: 'the run whose adapters to use (default: generated/<spec>/run, if it has a checkpoint)',
    model: 'evaluate this merged model (merged.safetensors from `qalc merge`, or a folder from `qalc export --format qalc`) on the spec\'s held-out data',
    batches: 'average over the first N held-out batches only (default: all of the held-out split, as train measures it)',
    backend: 'cpu (the default), webgpu (every op as WGSL through Dawn, the quantized linear layers on the spec\'s compiled kernels) or cuda (every op on the GPU, on the spec\'s compiled linear and model-op kernels)',
    kernels: 'with --backend cuda: the compiled kernels (default generated/<spec>/cuda)',
    help: 'show this help',
  },
  async run(positionals, values) {
    if (positionals.length !== 1) throw new UsageError('eval takes exactly one spec file', 'eval');
    const batches = values.batches === undefined ? undefined : Number(values.batches);
    if (batches !== undefined && !(Number.isInteger(batches) && batches >= 1)) throw new UsageError(`--batches must be a positive integer`, 'eval');
    const loaded = await planOf(positionals[0]!, 'eval');
    if (typeof loaded === 'number') return loaded;
    const { evaluateRun } = await import('../../train/evaluate-run.ts');
    const chosen = await chooseBackend(requestedBackend(loaded.plan, values.backend as string | undefined), loaded.plan, values.kernels ? { kernelDir: values.kernels as string } : {});
    if (chosen.notice) process.stderr.write(`${chosen.notice}\n`);
    let result;
    try {
      result = await evaluateRun({
        plan: loaded.plan, specDir: loaded.specDir, ...(batches ? { batches } : {}), ops: chosen.ops,
        ...(values.model ? { mergedModel: values.model as string } : { checkpoint: join((values.out as string | undefined) ?? defaultRunDir(loaded.plan), 'checkpoint.safetensors') }),
      });
    } finally {
      chosen.close();
    }
    for (const notice of result.notices) process.stderr.write(`${notice}\n`);
    process.stderr.write(`${result.what}: ${result.tokens.toLocaleString('en-US')} held-out tokens (${result.batches} batches of up to ${result.batchSize}×${result.seqLen})\n`);
    process.stdout.write(`loss ${result.loss.toFixed(6)} perplexity ${Math.exp(result.loss).toFixed(4)}\n`);
    return 0;
  },
};
