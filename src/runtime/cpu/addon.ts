// Loads qalc's CPU backend, build/Release/qalc_cpu.node (C++17 sources in ./native, built by
// `npm ci` through the package's install script, or by hand with `npx node-gyp rebuild`), and
// gives it types. The functions work on the caller's typed arrays in place — nothing is copied
// — and check every array's element type and length before touching it.
//
// Each kernel matches its TypeScript twin in src/runtime/typescript (float32 storage, float64 sums) and
// gives bit-identical results for any thread count.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../project-root.ts';

/** The flat description of a QA-LoRA linear layer that the native kernels read (see native/kernels.h). */
export interface NativeLinearLayer {
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** Quantized base: codes K×N and the same transposed (N×K, for dx), scales and zeros L×N. */
  readonly q?: Uint8Array;
  readonly qT?: Uint8Array;
  readonly scales?: Float64Array;
  readonly zeros?: Float64Array;
  readonly quantGroup?: number;
  /** Dense base Ŵ, K×N, when there are no codes. */
  readonly dense?: Float32Array;
  /** 0: no adapter; then nothing below is read. */
  readonly rank: number;
  readonly adapterGroup?: number;
  readonly poolFactor?: number;
  readonly scaling?: number;
  readonly dropout?: number;
  readonly a?: Float32Array;
  readonly b?: Float32Array;
  readonly gradA?: Float32Array;
  readonly gradB?: Float32Array;
  readonly u?: Float32Array;
  readonly v?: Float32Array;
  readonly mask?: Uint8Array;
}

export interface DecoderShape {
  readonly dim: number;
  readonly hiddenDim: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly vocab: number;
  readonly context: number;
  /** The model's RMSNorm ε; θ comes in the RoPE tables. */
  readonly rmsNormEps: number;
}

export interface DecoderLayerWeights {
  readonly rmsAtt: Float32Array;
  readonly wq: Float32Array;
  readonly wk: Float32Array;
  readonly wv: Float32Array;
  readonly wo: Float32Array;
  readonly rmsFfn: Float32Array;
  readonly w1: Float32Array;
  readonly w2: Float32Array;
  readonly w3: Float32Array;
}

/** A float32 LLaMA with its own KV cache and copies of the weights ([out, in], llama2.c). */
export interface NativeDecoder {
  /** Writes the logits of `token` at position `pos` (0, 1, 2, … in order) into `logits`. */
  forward(token: number, pos: number, logits: Float32Array): void;
}

export interface CpuAddon {
  /** Threads the kernels use, the calling thread included (default 1). Results do not depend on it. */
  setThreads(threads: number): void;
  threads(): number;
  /** Multiply-adds below which a chunk of work is not handed to another thread (default 32768; tests use 1). */
  setMinChunkWork(work: number): void;
  minChunkWork(): number;
  qaloraLinearForward(y: Float32Array, x: Float32Array, rows: number, layer: NativeLinearLayer): void;
  qaloraLinearBackward(dx: Float32Array, dy: Float32Array, rows: number, layer: NativeLinearLayer): void;
  matvecOutMajor(y: Float32Array, x: Float32Array, w: Float32Array, inFeatures: number, outFeatures: number): void;
  lmHeadForward(logits: Float32Array, x: Float32Array, classifier: Float32Array, rows: number, channels: number, vocab: number): void;
  lmHeadBackward(dx: Float32Array, dLogits: Float32Array, classifier: Float32Array, rows: number, channels: number, vocab: number): void;
  attentionForward(
    out: Float32Array, probs: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array,
    batch: number, seqLen: number, heads: number, kvHeads: number, headSize: number,
  ): void;
  attentionBackward(
    dq: Float32Array, dk: Float32Array, dv: Float32Array, dOut: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array,
    probs: Float32Array, batch: number, seqLen: number, heads: number, kvHeads: number, headSize: number,
  ): void;
  rmsnormForward(out: Float32Array, rstd: Float32Array, x: Float32Array, weight: Float32Array, rows: number, channels: number, eps: number): void;
  rmsnormBackward(dx: Float32Array, dy: Float32Array, x: Float32Array, weight: Float32Array, rstd: Float32Array, rows: number, channels: number): void;
  /** direction 1: forward rotation, −1: backward. */
  ropeRotate(
    x: Float32Array, cos: Float32Array, sin: Float32Array, positions: number,
    batch: number, seqLen: number, width: number, headSize: number, direction: 1 | -1,
  ): void;
  swigluForward(out: Float32Array, gate: Float32Array, up: Float32Array, count: number): void;
  swigluBackward(dGate: Float32Array, dUp: Float32Array, dOut: Float32Array, gate: Float32Array, up: Float32Array, count: number): void;
  crossEntropyForward(
    probs: Float32Array, logits: Float32Array, targets: Int32Array, mask: Float32Array | undefined, rows: number, vocab: number,
  ): { loss: number; counted: number };
  crossEntropyBackward(
    dLogits: Float32Array, probs: Float32Array, targets: Int32Array, mask: Float32Array | undefined, rows: number, vocab: number, dLoss: number,
  ): void;
  Decoder: new (
    shape: DecoderShape, tokenEmbedding: Float32Array, layers: readonly DecoderLayerWeights[],
    rmsFinal: Float32Array, classifier: Float32Array, ropeCos: Float32Array, ropeSin: Float32Array,
  ) => NativeDecoder;
}

export const CPU_ADDON_PATH = join(PROJECT_ROOT, 'build', 'Release', 'qalc_cpu.node');

export class CpuAddonError extends Error {
  override readonly name = 'CpuAddonError';
}

let loaded: CpuAddon | undefined;

/** The addon, loaded once; throws CpuAddonError saying how to build it when it is missing. */
export function cpuAddon(): CpuAddon {
  if (loaded !== undefined) return loaded;
  if (!existsSync(CPU_ADDON_PATH)) {
    throw new CpuAddonError(
      `the native CPU backend is not built: ${CPU_ADDON_PATH} is missing. ` +
      'Run `npm ci` (its install script builds it) or `npx node-gyp rebuild` in the repository root; ' +
      'it needs a C++17 compiler, make and python3.',
    );
  }
  try {
    loaded = createRequire(import.meta.url)(CPU_ADDON_PATH) as CpuAddon;
  } catch (error) {
    throw new CpuAddonError(
      `cannot load the native CPU backend ${CPU_ADDON_PATH}: ${(error as Error).message}. ` +
      'Rebuild it with `npx node-gyp rebuild` (for example after switching Node versions).',
    );
  }
  return loaded;
}

/** Whether the addon is built and loads (for tests and benchmarks that skip without it). */
export function cpuAddonAvailable(): boolean {
  try {
    cpuAddon();
    return true;
  } catch (error) {
    if (error instanceof CpuAddonError) return false;
    throw error;
  }
}
