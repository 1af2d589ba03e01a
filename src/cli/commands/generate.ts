import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { defaultRunDir, planOf } from '../runtime-spec.ts';
import { UsageError, type Command } from '../usage.ts';
import { generate, type Generation, type GenerateOptions } from '../../model/generate.ts';
import type { DecodeModel } from '../../model/llama-forward.ts';
import type { Tokenizer } from '../../model/tokenizer.ts';

/** The merged model's file: a .safetensors (`qalc merge`'s) or a `qalc export --format qalc` folder's; else undefined. */
function mergedModelFile(input: string): string | undefined {
  if (input.endsWith('.safetensors')) return input;
  return existsSync(join(input, 'model.safetensors')) && isQalcExport(input) ? join(input, 'model.safetensors') : undefined;
}

/** A folder `qalc export --format qalc` wrote (its export.json says so). */
function isQalcExport(dir: string): boolean {
  try {
    return (JSON.parse(readFileSync(join(dir, 'export.json'), 'utf8')) as { format?: string }).format === 'qalc';
  } catch {
    return false;
  }
}

export const generateCommand: Command = {
  name: 'generate',
  summary: 'Generate text. MODEL_OR_SPEC is a llama2.c checkpoint or a Hugging Face LLaMA directory (run unquantized), a merged model from `qalc merge` or a folder from `qalc export --format qalc`, or a spec (its quantized model with the adapters of its run). Prints only the text on stdout, and the tokens and tokens/s on stderr.',
  usage: 'qalc generate MODEL_OR_SPEC [--backend cpu|cuda] [--kernels DIR] [--random-weights] [--merged] [--tokenizer FILE] [--prompt TEXT] [--temperature T] [--steps N] [--seed S]',
  options: {
    backend: { type: 'string' },
    kernels: { type: 'string' },
    'random-weights': { type: 'boolean' },
    merged: { type: 'boolean' },
    tokenizer: { type: 'string' },
    prompt: { type: 'string' },
    temperature: { type: 'string' },
    steps: { type: 'string' },
    seed: { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  optionHelp: {
    backend: 'cpu (the default): the merged, dequantized model on the CPU; cuda (a spec or a merged model): a spec\'s quantized model and the run\'s adapters, or a merged model\'s codes, scales and float zeros (its plan\'s kernels without adapters), on the GPU, one token a step through the compiled linear kernels\' decode role and the model-op kernels, the KV cache on the device (float32); the weights go up in a first, untimed forward',
    merged: 'with a spec and --backend cuda: fold the run\'s adapters into the zeros first, in memory (what `qalc merge` writes), and decode that merged model: no adapter term in any linear',
    kernels: 'with --backend cuda: the compiled kernels (default generated/<spec>/cuda; missing fatbins are built when nvcc is on PATH)',
    'random-weights': 'a spec without a checkpoint: generate from seeded random weights drawn as `qalc train --random-weights` draws them (the run\'s seed where its checkpoint records one, else the spec\'s train.seed); the text means nothing, the speed is the shape\'s',
    tokenizer: 'tokenizer.json, SentencePiece .model or llama2.c tokenizer.bin (default: the spec\'s, the model directory\'s tokenizer.json / tokenizer.model, or tokenizer.bin beside a llama2.c file)',
    prompt: 'text to start from',
    temperature: '0 (the default) is greedy; higher samples more freely',
    steps: 'forward passes, prompt included (default 256)',
    seed: 'sampling seed (default 42)',
    out: 'for a spec: the run whose adapters to use (default generated/<spec>/run)',
    help: 'show this help',
  },
  async run(positionals, values) {
    if (positionals.length !== 1) throw new UsageError('generate takes exactly one model or spec', 'generate');
    const number = (name: string, fallback: number, integer: boolean) => {
      const value = values[name] === undefined ? fallback : Number(values[name]);
      if (!Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) throw new UsageError(`--${name} must be a non-negative ${integer ? 'integer' : 'number'}`, 'generate');
      return value;
    };
    const temperature = number('temperature', 0, false);
    const steps = number('steps', 256, true);
    const seed = number('seed', 42, true);
    if (seed === 0) throw new UsageError('--seed must be a positive integer: run.c\'s xorshift generator needs a non-zero state', 'generate');
    const input = positionals[0]!;
    const backend = (values.backend as string | undefined) ?? 'cpu';
    if (backend !== 'cpu' && backend !== 'cuda') throw new UsageError(`--backend must be cpu or cuda for generate, not '${backend}'`, 'generate');
    const mergedFile = mergedModelFile(input);
    if (backend === 'cuda' && !input.endsWith('.qal') && mergedFile === undefined) throw new UsageError('--backend cuda takes a spec (its quantized model and its run\'s adapters) or a merged model (`qalc merge`, `qalc export --format qalc`); a dense model runs on --backend cpu', 'generate');
    if (values.merged === true && !(backend === 'cuda' && input.endsWith('.qal'))) throw new UsageError('--merged goes with a spec and --backend cuda', 'generate');
    if (values.kernels !== undefined && backend !== 'cuda') throw new UsageError('--kernels goes with --backend cuda', 'generate');
    if (values['random-weights'] === true && !input.endsWith('.qal')) throw new UsageError('--random-weights goes with a spec', 'generate');
    if (backend === 'cuda') return generateOnCuda(input, mergedFile, values, { steps, temperature, seed });
    const { parseTokenizer, readTokenizer, tokenizerInDirectory } = await import('../../model/read-tokenizer.ts');
    const { cpuBackend } = await import('../../runtime/cpu/backend.ts');
    const cpu = cpuBackend();
    if (cpu.notice) process.stderr.write(`${cpu.notice}\n`);

    let weights;
    const tokenizerPath = values.tokenizer as string | undefined;
    // The spec's tokenizer, or the one a model directory carries; --tokenizer replaces either.
    let tokenizer;
    if (input.endsWith('.qal')) {
      const loaded = await planOf(input, 'generate');
      if (typeof loaded === 'number') return loaded;
      const { specModelWithRun } = await import('../../train/spec-model.ts');
      const checkpoint = join((values.out as string | undefined) ?? defaultRunDir(loaded.plan), 'checkpoint.safetensors');
      const built = specModelWithRun(loaded.plan, loaded.specDir, checkpoint, cpu.ops, { randomWeights: values['random-weights'] === true });
      process.stderr.write(`${built.description}\n`);
      weights = built.weights;
      if (!tokenizerPath) tokenizer = built.tokenizer;
    } else if (mergedFile !== undefined) {
      const { readMergedModel, denseCheckpointOf } = await import('../../export/merged-model.ts');
      const path = mergedFile;
      const merged = readMergedModel(path);
      weights = denseCheckpointOf(merged, path);
      if (!tokenizerPath && merged.tokenizer) tokenizer = parseTokenizer(merged.tokenizer.bytes, weights.arch.vocab, `${path} (its ${merged.tokenizer.name})`);
    } else if (statSync(input, { throwIfNoEntry: false })?.isDirectory()) {
      const { inferCheckpointFormat } = await import('../../model/read-architecture.ts');
      if (inferCheckpointFormat(input) === 'gptq') {
        const { readGptqCheckpoint } = await import('../../model/gptq-checkpoint.ts');
        weights = readGptqCheckpoint(input);
      } else {
        const { readHfCheckpoint } = await import('../../model/hf-checkpoint.ts');
        weights = readHfCheckpoint(input);
      }
      if (!tokenizerPath) {
        const inside = tokenizerInDirectory(input);
        if (!inside) throw new UsageError(`${input} has no tokenizer.json or tokenizer.model: give one with --tokenizer FILE`, 'generate');
        tokenizer = readTokenizer(inside, weights.arch.vocab, input);
      }
    } else {
      const { readLlama2cCheckpoint } = await import('../../model/llama2c-checkpoint.ts');
      weights = readLlama2cCheckpoint(input);
    }
    if (!tokenizer) {
      let path = tokenizerPath;
      if (!path) {
        const beside = join(dirname(input), 'tokenizer.bin');
        if (!existsSync(beside)) throw new UsageError(`no tokenizer: give --tokenizer FILE (none in the spec, no tokenizer.bin beside ${input})`, 'generate');
        path = beside;
      }
      tokenizer = readTokenizer(path, weights.arch.vocab, input);
    }
    const prompt = values.prompt ? tokenizer.encode(values.prompt as string, { bos: false }) : [];
    printGeneration(generateTimed(cpu.decoder(weights), tokenizer, { steps, temperature, seed, prompt }), prompt.length);
    return 0;
  },
};

type Sampling = Required<Pick<GenerateOptions, 'steps' | 'temperature' | 'seed'>>;

function generateTimed(decoder: DecodeModel, tokenizer: Tokenizer, options: GenerateOptions): { result: Generation; seconds: number } {
  const started = performance.now();
  const result = generate(decoder, tokenizer, options);
  return { result, seconds: (performance.now() - started) / 1000 };
}

function printGeneration({ result, seconds }: { result: Generation; seconds: number }, promptLength: number): void {
  process.stdout.write(result.text + '\n');
  // Every token is one forward pass, the prompt's included (they are run one at a time too).
  process.stderr.write(`generated ${result.tokens.length} tokens (${Math.min(promptLength, result.tokens.length)} of them the prompt) in ${seconds.toFixed(2)} s: ` +
    `${Math.round(result.tokens.length / seconds).toLocaleString('en-US')} tokens/s\n`);
}

async function generateOnCuda(input: string, mergedFile: string | undefined, values: Record<string, unknown>, sampling: Sampling): Promise<number> {
  const { readTokenizer, parseTokenizer } = await import('../../model/read-tokenizer.ts');
  const { cudaMergedDecoder, cudaSpecDecoder } = await import('./generate-cuda.ts');
  const kernelDir = values.kernels as string | undefined;
  let built;
  if (mergedFile !== undefined) {
    const { readMergedModel } = await import('../../export/merged-model.ts');
    const merged = readMergedModel(mergedFile);
    const tokenizerPath = values.tokenizer as string | undefined;
    if (!tokenizerPath && !merged.tokenizer) throw new UsageError(`${mergedFile} carries no tokenizer: give one with --tokenizer FILE`, 'generate');
    const tokenizer = tokenizerPath ? readTokenizer(tokenizerPath, merged.arch.vocab, input) : parseTokenizer(merged.tokenizer!.bytes, merged.arch.vocab, `${mergedFile} (its ${merged.tokenizer!.name})`);
    built = await cudaMergedDecoder(merged, tokenizer, `${mergedFile}: a merged model (${merged.spec}), its codes, scales and float zeros as stored, no adapters`, sampling.steps, kernelDir);
  } else {
    const loaded = await planOf(input, 'generate');
    if (typeof loaded === 'number') return loaded;
    const checkpoint = join((values.out as string | undefined) ?? defaultRunDir(loaded.plan), 'checkpoint.safetensors');
    built = await cudaSpecDecoder(loaded.plan, loaded.specDir, checkpoint, sampling.steps, {
      ...(kernelDir !== undefined ? { kernelDir } : {}), randomWeights: values['random-weights'] === true, merged: values.merged === true,
    });
  }
  try {
    if (built.notice) process.stderr.write(`${built.notice}\n`);
    process.stderr.write(`${built.description}\n`);
    const tokenizerPath = values.tokenizer as string | undefined;
    const tokenizer = tokenizerPath ? readTokenizer(tokenizerPath, built.decoder.arch.vocab, input) : built.tokenizer;
    const prompt = values.prompt ? tokenizer.encode(values.prompt as string, { bos: false }) : [];
    // The first forward sends the weights up (the device keeps each on its first use), the next
    // ones capture the step in a CUDA graph where it will be: untimed, at position 0, which
    // generate() then overwrites, so tokens/s is the steady rate.
    const warmUp = performance.now();
    const warmUps = sampling.steps > 0 ? built.decoder.warmUp(tokenizer.bos) : 0;
    process.stderr.write(`warm-up: ${warmUps} forward${warmUps === 1 ? '' : 's'} (the weights to the device${warmUps > 1 ? ', the step captured' : ''}) ${((performance.now() - warmUp) / 1000).toFixed(2)} s\n`);
    printGeneration(generateTimed(built.decoder, tokenizer, { ...sampling, prompt }), prompt.length);
    const report = built.report();
    if (report) process.stderr.write(`${report}\n`);
  } finally {
    built.close();
  }
  return 0;
}
