import { chooseBackend, requestedBackend } from '../../runtime/backend.ts';
import { defaultRunDir, planOf } from '../runtime-spec.ts';
import { UsageError, type Command } from '../usage.ts';

export const trainCommand: Command = {
  name: 'train',
  summary: 'Fine-tune the spec\'s model with QA-LoRA: quantize it as planned, train the adapters, and write train.jsonl, checkpoints, loss.svg and summary.json to the run folder. A killed run continues with --resume.',
  usage: 'qalc train SPEC [--backend cpu|webgpu|cuda] [--kernels DIR] [--steps N] [--out DIR] [--resume] [--random-weights [--seed N]]',
  options: {
    backend: { type: 'string' },
    kernels: { type: 'string' },
    steps: { type: 'string' },
    out: { type: 'string' },
    resume: { type: 'boolean' },
    'random-weights': { type: 'boolean' },
    seed: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  optionHelp: {
    backend: 'cpu (the default); webgpu: through Dawn (a GPU\'s Vulkan driver, or Mesa lavapipe on the CPU), the quantized linear layers on the spec\'s compiled WGSL kernels and every other op on WGSL op kernels; or cuda: every op on the GPU, on the spec\'s compiled linear and model-op kernels, the data kept on the device, AdamW too',
    kernels: 'with --backend cuda: the compiled kernels (default generated/<spec>/cuda; missing fatbins are built when nvcc is on PATH)',
    steps: 'optimizer steps (default: the spec\'s train.steps)',
    out: 'run folder (default: generated/<spec>/run)',
    resume: 'continue the run in the folder from its last checkpoint, on the learning-rate schedule it began with (--steps may stop it earlier, not run past a decaying schedule\'s end)',
    'random-weights': 'a spec without a checkpoint (a preset or a written-out architecture): train on seeded random weights, normal(0, 0.02) projections and embeddings, RMSNorm weights 1, to measure the shape; the losses mean nothing about a real model. Each quantized projection is drawn and quantized a row at a time, its floats never held (10.8 GiB of host memory for LLaMA-2-7B\'s shape, INT4 g32: codes, scales, embedding, lm_head; a GPTQ plan holds the float model); on --backend cuda each is drawn whole on the host and quantized on the GPU by the compiled quantize kernels, a few projections\' floats held at a time (QALC_CUDA_QUANTIZE=host: on the host). eval, merge and generate of the run rebuild the same weights from the seed its checkpoint records',
    seed: 'with --random-weights: the weights\' seed (default: the spec\'s train.seed; on --resume, the run\'s)',
    help: 'show this help',
  },
  async run(positionals, values) {
    if (positionals.length !== 1) throw new UsageError('train takes exactly one spec file', 'train');
    const steps = values.steps === undefined ? undefined : Number(values.steps);
    if (steps !== undefined && !(Number.isInteger(steps) && steps >= 1)) throw new UsageError(`--steps must be a positive integer, not '${String(values.steps)}'`, 'train');
    const seed = values.seed === undefined ? undefined : Number(values.seed);
    if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32)) throw new UsageError(`--seed must be an integer from 0 to 4294967295, not '${String(values.seed)}'`, 'train');
    if (seed !== undefined && values['random-weights'] !== true) throw new UsageError('--seed seeds the random weights: it goes with --random-weights', 'train');
    const randomWeights = values['random-weights'] === true ? { randomWeights: seed === undefined ? {} : { seed } } : {};
    const loaded = await planOf(positionals[0]!, 'train');
    if (typeof loaded === 'number') return loaded;
    const chosen = await chooseBackend(requestedBackend(loaded.plan, values.backend as string | undefined), loaded.plan, values.kernels ? { kernelDir: values.kernels as string } : {});
    if (chosen.notice) process.stderr.write(`${chosen.notice}\n`);
    const { train } = await import('../../train/trainer.ts');
    const out = (values.out as string | undefined) ?? defaultRunDir(loaded.plan);
    let summary;
    try {
      summary = await train({ plan: loaded.plan, specDir: loaded.specDir, out, ...(steps ? { steps } : {}), resume: values.resume === true, ops: chosen.ops, ...randomWeights });
      const report = chosen.report();
      if (report) process.stderr.write(`${report}\n`);
    } finally {
      chosen.close();
    }
    process.stderr.write(
      `${loaded.plan.spec}: ${summary.steps} steps${summary.resumedFrom !== null ? ` (resumed at ${summary.resumedFrom})` : ''} in ${summary.seconds.toFixed(1)} s ` +
      `(${summary.evalSeconds.toFixed(1)} s of it held-out evaluation), ${Math.round(summary.tokensPerSecond)} tokens/s; ` +
      `held-out loss ${summary.evalLossBefore.toFixed(4)} → ${summary.evalLossAfter.toFixed(4)} over ${summary.evalTokens.toLocaleString('en-US')} tokens ` +
      `(perplexity ${Math.exp(summary.evalLossBefore).toFixed(2)} → ${Math.exp(summary.evalLossAfter).toFixed(2)})\n` +
      (summary.stepGraph !== undefined ? `${summary.stepGraph}\n` : '') +
      (summary.randomWeightsSeed !== undefined ? `WARNING: trained on RANDOM WEIGHTS seeded ${summary.randomWeightsSeed}: these losses mean nothing about a real model\n` : '') +
      `wrote ${out}/train.jsonl, checkpoint.safetensors, loss.svg, summary.json\n`);
    return 0;
  },
};
