// Text generation as llama2.c run.c's generate(): start from BOS at position 0; each step runs
// one forward pass and picks the next token; stop at BOS (a sample that starts a new story, as
// run.c does), at EOS (as transformers' generate does) or after `steps` forward passes. `steps`
// counts forward passes, so BOS's position is one of them: 256 steps print at most 256 tokens,
// those at positions 1..256.
import { firstNonFinite } from './finite.ts';
import type { Tokenizer } from './tokenizer.ts';
import type { DecodeModel } from './llama-forward.ts';

export interface GenerateOptions {
  /** Forward passes to run, capped at the model's context. Default: the context. */
  readonly steps?: number;
  /** 0 (the default) is greedy argmax; otherwise sample from softmax(logits / temperature). */
  readonly temperature?: number;
  /** Seed of the sampling RNG (run.c's xorshift64*). Default 42. */
  readonly seed?: number | bigint;
  /** Tokens to force first, after BOS (encode(text, { bos: false })). */
  readonly prompt?: readonly number[];
}

export interface Generation {
  /** The decoded text (without run.c's final newline). */
  readonly text: string;
  /** Every token after BOS, prompt included. */
  readonly tokens: number[];
}

/** Index of the largest value; the first one on ties (run.c's sample_argmax). */
export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

const MASK64 = (1n << 64n) - 1n;

/** run.c's xorshift64* generator: the same seed gives the same stream of numbers as run.c. */
export class XorShiftRng {
  private state: bigint;

  constructor(seed: number | bigint) {
    this.state = BigInt(seed) & MASK64;
    if (this.state === 0n) throw new RangeError('xorshift seed must be non-zero');
  }

  nextU32(): number {
    let s = this.state;
    s ^= s >> 12n;
    s = (s ^ (s << 25n)) & MASK64;
    s ^= s >> 27n;
    this.state = s;
    return Number(((s * 0x2545f4914f6cdd1dn) & MASK64) >> 32n);
  }

  /** Uniform in [0, 1) with 24 bits. */
  nextF32(): number {
    return (this.nextU32() >>> 8) / 16777216;
  }
}

/** Draws from softmax(logits / temperature); `scratch` receives the probabilities. */
export function sampleWithTemperature(logits: Float32Array, temperature: number, rng: XorShiftRng, scratch: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const p = Math.exp((logits[i] - max) / temperature);
    scratch[i] = p;
    sum += p;
  }
  const coin = rng.nextF32() * sum;
  let cdf = 0;
  for (let i = 0; i < logits.length; i++) {
    cdf += scratch[i];
    if (coin < cdf) return i;
  }
  return logits.length - 1; // rounding
}

/** The model cannot be run: its numbers went non-finite. Named for the CLI's exit status 1. */
export class GenerationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GenerationError';
  }
}

export function generate(model: DecodeModel, tokenizer: Tokenizer, options: GenerateOptions = {}): Generation {
  const temperature = options.temperature ?? 0;
  if (!(temperature >= 0)) throw new RangeError(`temperature must be ≥ 0, got ${temperature}`);
  const steps = Math.min(options.steps ?? model.arch.context, model.arch.context);
  const prompt = options.prompt ?? [];
  const rng = new XorShiftRng(options.seed ?? 42);
  const probabilities = new Float32Array(model.arch.vocab);

  const tokens: number[] = [];
  let token = tokenizer.bos;
  for (let pos = 0; pos < steps; pos++) {
    const logits = model.forward(token, pos);
    // Weights are checked finite when read; NaN here is an overflow, and argmax of NaN would
    // print <unk> after <unk> as if it were text.
    const bad = firstNonFinite(logits);
    if (bad >= 0) throw new GenerationError(`the model's logits are ${logits[bad]} at position ${pos}: its activations overflow float32 (weights too large?)`);
    const next = pos < prompt.length ? prompt[pos]
      : temperature === 0 ? argmax(logits)
      : sampleWithTemperature(logits, temperature, rng, probabilities);
    if (next === tokenizer.bos || next === tokenizer.eos) break;
    tokens.push(next);
    token = next;
  }
  return { text: tokenizer.decode(tokens), tokens };
}
