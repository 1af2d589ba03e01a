// The kernel execution suite, written once for every backend (the cubecl habit): a table of
// layer configurations, a float64 oracle (src/quant + src/reference) for each kernel role, and
// a `KernelBackend` interface. A backend test file instantiates it with its own runKernel;
// test/backends/wgsl/kernels.webgpu.test.ts does so for WebGPU, the CUDA backend will too.
//
// Errors are norm-wise: ‖got − ref‖₂ / ‖ref‖₂ over a whole output tensor, with ref computed in
// float64 from exactly the (f32- or f16-rounded) values the kernel was given. Integer outputs
// (codes, packed words, RTN zeros) must match exactly; RTN scales to within 2 f32 ulps.
import { afterAll, describe, expect, it } from 'vitest';
import type { LoweredKernel, LoweredProgram, ScalarType, Target } from '../../src/ir/kernel-ir.ts';
import { lowerPlan } from '../../src/ir/lower.ts';
import type { AdapterPlan, KernelRole, LayerPlan, Plan } from '../../src/plan/plan.ts';
import { dequantize } from '../../src/quant/dequantize.ts';
import { packQweight } from '../../src/quant/gptq-pack.ts';
import { mergeAdapterIntoZeros } from '../../src/quant/merge.ts';
import type { QuantizedWeight } from '../../src/quant/quantized-weight.ts';
import { quantizeRtn } from '../../src/quant/rtn.ts';
import type { QaLoraAdapter } from '../../src/reference/adapter.ts';
import type { DropoutMask } from '../../src/reference/dropout.ts';
import { matmul, matmulTransposeB } from '../../src/reference/matrix.ts';
import { unpoolGroups } from '../../src/reference/pooling.ts';
import { qaloraBackward, qaloraForward } from '../../src/reference/qalora-layer.ts';
import { createRng, randomNormalMatrix } from '../../src/reference/random.ts';
import { roundToF16 } from './f16.ts';
import { relativeL2Error } from '../support/relative-error.ts';

export interface KernelCase {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly bits: 2 | 3 | 4 | 8;
  readonly group: number;
  /** Zero-pad K up to a multiple of the group. */
  readonly pad?: boolean;
  readonly symmetric?: boolean;
  readonly adapter?: { readonly rank: number; readonly pooling: 'mean' | 'sum'; readonly dropout?: number };
}

/** Ragged shapes: K and N not multiples of the 16×16 tiles; stories260K's own shapes included. */
export const KERNEL_CASES: readonly KernelCase[] = [
  { inFeatures: 64, outFeatures: 64, bits: 4, group: 16, adapter: { rank: 4, pooling: 'mean' } }, // stories260K q, o
  { inFeatures: 172, outFeatures: 64, bits: 4, group: 43, adapter: { rank: 4, pooling: 'mean' } }, // stories260K down
  { inFeatures: 64, outFeatures: 172, bits: 2, group: 16, adapter: { rank: 4, pooling: 'mean' } }, // gate, up at 2 bits
  { inFeatures: 96, outFeatures: 40, bits: 3, group: 32, adapter: { rank: 2, pooling: 'mean', dropout: 0.25 } },
  { inFeatures: 128, outFeatures: 40, bits: 8, group: 64, adapter: { rank: 2, pooling: 'sum' } },
  { inFeatures: 96, outFeatures: 24, bits: 3, group: 16, symmetric: true },
  { inFeatures: 40, outFeatures: 24, bits: 4, group: 16, pad: true, adapter: { rank: 2, pooling: 'mean' } },
  // The remaining bits × group sizes of the examples (test/ir/coverage.test.ts keeps this complete).
  { inFeatures: 96, outFeatures: 40, bits: 4, group: 32, adapter: { rank: 2, pooling: 'mean' } }, // LLaMA-7B
  { inFeatures: 192, outFeatures: 24, bits: 4, group: 64, adapter: { rank: 2, pooling: 'mean' } }, // 13B mixed
  { inFeatures: 128, outFeatures: 40, bits: 3, group: 64, adapter: { rank: 2, pooling: 'mean' } },
  { inFeatures: 96, outFeatures: 24, bits: 2, group: 32, adapter: { rank: 2, pooling: 'mean' } },
  { inFeatures: 256, outFeatures: 24, bits: 8, group: 128, adapter: { rank: 2, pooling: 'mean' } },
  // A rank whose adapter activations crowd workgroup memory: the WGSL forward computes 2 × 4
  // outputs an invocation in 32-row tiles instead of 4 × 4 in 64 (as LLaMA-7B's rank 64 does).
  { inFeatures: 96, outFeatures: 40, bits: 4, group: 2, adapter: { rank: 40, pooling: 'mean' } },
];

export const TOKEN_COUNTS = [1, 5, 37] as const;
export const DECODE_TOKEN_COUNTS = [1, 5, 16] as const;
/** σ = alpha / rank used by every case. */
export const ADAPTER_SCALE = 2;

export const caseName = (c: KernelCase): string =>
  `k${c.inFeatures}_n${c.outFeatures}_b${c.bits}_g${c.group}${c.pad ? '_pad' : ''}${c.symmetric ? '_sym' : ''}` +
  (c.adapter ? `_r${c.adapter.rank}_${c.adapter.pooling}${c.adapter.dropout ? '_dropout' : ''}` : '_noadapter');

export type HostData = Float32Array | Uint32Array;

export interface KernelRun {
  readonly tokens: number;
  readonly adapterScale: number;
  /** By binding name; float data is f32 and the backend converts to the binding's type. */
  readonly inputs: Readonly<Record<string, HostData>>;
  /** Entry points to run, in order; all of the kernel's when absent. */
  readonly entryPoints?: readonly string[];
}

export interface KernelBackend {
  readonly name: string;
  readonly target: Target;
  /** Runs the kernel and returns every writable binding, floats widened to f32. */
  runKernel(program: LoweredProgram, kernel: LoweredKernel, run: KernelRun): Promise<Readonly<Record<string, HostData>>>;
}

/** A plan with one layer per case, as the front end would build for a written model. */
export function syntheticPlan(cases: readonly KernelCase[]): Plan {
  const layers: LayerPlan[] = cases.map((c, index) => {
    const paddedInFeatures = c.pad ? Math.ceil(c.inFeatures / c.group) * c.group : c.inFeatures;
    const groups = paddedInFeatures / c.group;
    const adapter: AdapterPlan | null = c.adapter
      ? {
          kind: 'qalora', rank: c.adapter.rank, alpha: ADAPTER_SCALE * c.adapter.rank, scale: ADAPTER_SCALE,
          dropout: c.adapter.dropout ?? 0, pooling: c.adapter.pooling, init: 'kaiming_uniform', dtype: 'fp32', inputWidth: groups,
        }
      : null;
    const kernels: KernelRole[] = ['quantize', 'pack', 'dequantize', 'forward', 'decode', 'backward_data', ...(adapter ? (['adapter_grad', 'merge'] as const) : [])];
    return {
      name: caseName(c), hfName: caseName(c), block: index, projection: 'case',
      inFeatures: c.inFeatures, outFeatures: c.outFeatures,
      quant: {
        bits: c.bits, group: c.group, groups, paddedInFeatures, pad: c.pad ? 'zero' : 'none', symmetric: c.symmetric ?? false,
        scaleDtype: 'fp32', zeroStorage: 'fp32', method: 'rtn',
      },
      adapter, kernels,
      sizes: { fp16Bytes: 0, weightBytes: 0, scaleBytes: 0, zeroBytes: 0, adapterParams: 0, adapterBytes: 0 },
      sources: [`test/ir/kernel-cases.ts:${index + 1}`],
    };
  });
  return {
    spec: 'kernel_cases',
    specFile: 'test/ir/kernel-cases.ts',
    model: { source: 'written', architecture: { dim: 64, hiddenDim: 172, layers: cases.length, heads: 1, kvHeads: 1, vocab: 1, context: 1, tiedEmbeddings: false, ropeTheta: 10000, rmsNormEps: 1e-5 } },
    layers,
    totals: { linearFp16Bytes: 0, linearQuantizedBytes: 0, adapterParams: 0, adapterBytes: 0, otherBytes: 0, modelFp16Bytes: 0, modelQuantizedBytes: 0 },
    targets: {},
  };
}

const f32 = (values: ArrayLike<number>) => Float32Array.from(values as ArrayLike<number>);
const u32 = (values: ArrayLike<number>) => Uint32Array.from(values as ArrayLike<number>);

interface CaseData {
  readonly paddedInFeatures: number;
  readonly groups: number;
  readonly weight: Float32Array;
  /** RTN of the f32 weight, scales as computed (float64). */
  readonly rtn: QuantizedWeight;
  /** The same with scales rounded to f32, as the kernels get them. */
  readonly quantized: QuantizedWeight;
  readonly qweight: Uint32Array;
  readonly dense: Float64Array;
  readonly adapter?: QaLoraAdapter;
}

function caseData(c: KernelCase, seed: number): CaseData {
  const rng = createRng(seed);
  const paddedInFeatures = c.pad ? Math.ceil(c.inFeatures / c.group) * c.group : c.inFeatures;
  const groups = paddedInFeatures / c.group;
  const N = c.outFeatures;
  const weight = f32(randomNormalMatrix(rng, paddedInFeatures, N, 0.1));
  weight.fill(0, c.inFeatures * N); // padded rows are zero
  const rtn = quantizeRtn(Float64Array.from(weight), paddedInFeatures, N, { bits: c.bits, groupSize: c.group, symmetric: c.symmetric ?? false });
  const quantized = { ...rtn, scales: rtn.scales.map(Math.fround) };
  const qweight = new Uint32Array(packQweight(rtn.q, paddedInFeatures, N, c.bits).buffer);
  const adapter = c.adapter
    ? {
        groupSize: c.group, rank: c.adapter.rank, pooling: c.adapter.pooling, scaling: ADAPTER_SCALE,
        a: randomNormalMatrix(rng, groups, c.adapter.rank, 0.5).map(Math.fround),
        b: randomNormalMatrix(rng, c.adapter.rank, N, 0.5).map(Math.fround),
      }
    : undefined;
  return { paddedInFeatures, groups, weight, rtn, quantized, qweight, dense: dequantize(quantized), ...(adapter ? { adapter } : {}) };
}

interface TokenData {
  readonly x: Float32Array;
  readonly dy: Float32Array;
  readonly mask?: DropoutMask;
  readonly multiplier?: Float32Array;
  readonly forward: { readonly y: Float64Array; readonly u?: Float64Array; readonly v?: Float64Array };
  readonly savedU?: Float32Array;
  readonly savedV?: Float32Array;
  readonly backward: { readonly dx: Float64Array; readonly dA?: Float64Array; readonly dB?: Float64Array; readonly du?: Float64Array; readonly dv?: Float64Array };
  readonly du?: Float32Array;
}

function tokenData(c: KernelCase, data: CaseData, tokens: number, seed: number, round: (value: number) => number): TokenData {
  const rng = createRng(seed);
  const K = c.inFeatures, Kp = data.paddedInFeatures, N = c.outFeatures, L = data.groups;
  const x = f32(randomNormalMatrix(rng, tokens, K).map(round));
  const dy = f32(randomNormalMatrix(rng, tokens, N).map(round));
  const xPadded = new Float64Array(tokens * Kp);
  for (let t = 0; t < tokens; t++) for (let i = 0; i < K; i++) xPadded[t * Kp + i] = x[t * K + i]!;
  const sliceInputs = (wide: Float64Array) => {
    const out = new Float64Array(tokens * K);
    for (let t = 0; t < tokens; t++) for (let i = 0; i < K; i++) out[t * K + i] = wide[t * Kp + i]!;
    return out;
  };
  const dxBase = matmulTransposeB(Float64Array.from(dy), data.dense, tokens, N, Kp);
  if (!data.adapter) {
    return { x, dy, forward: { y: matmul(xPadded, data.dense, tokens, Kp, N) }, backward: { dx: sliceInputs(dxBase) } };
  }
  const p = c.adapter!.dropout ?? 0;
  const mask = p > 0 ? { keep: Uint8Array.from({ length: tokens * L }, () => (rng.next() < p ? 0 : 1)), p } : undefined;
  const layer = { inFeatures: Kp, outFeatures: N, weight: data.dense, adapter: data.adapter };
  const forward = qaloraForward(layer, xPadded, tokens, mask);
  const savedU = f32(forward.u.map(round));
  const savedV = f32(forward.v.map(round));
  const grads = qaloraBackward(layer, Float64Array.from(dy), { u: Float64Array.from(savedU), v: Float64Array.from(savedV) }, tokens, mask);
  const du = f32(grads.du.map(round));
  const unpooled = unpoolGroups(Float64Array.from(du), tokens, Kp, c.group, c.adapter!.pooling);
  const dx = sliceInputs(dxBase.map((value, i) => value + unpooled[i]!));
  return {
    x, dy, forward, savedU, savedV, du,
    ...(mask ? { mask, multiplier: f32(Array.from(mask.keep, (keep) => keep / (1 - p))) } : {}),
    backward: { dx, dA: grads.dA, dB: grads.dB, du: grads.du, dv: grads.dv },
  };
}

export interface MeasuredError {
  readonly kernel: string;
  readonly tokens: number | null;
  readonly output: string;
  readonly error: number;
}

export interface SuiteOptions {
  readonly precision: ScalarType;
  /** Norm-wise relative tolerance for float outputs. */
  readonly tolerance: number;
  /** Roles to run (all when absent): the f16 variant runs the activation kernels only. */
  readonly roles?: readonly KernelRole[];
  /** Called once with every error measured, for the test log. */
  readonly report?: (errors: readonly MeasuredError[]) => void;
}

/** Declares the vitest cases for one backend at one precision. */
export function defineKernelSuite(backend: KernelBackend, options: SuiteOptions): void {
  const { precision, tolerance } = options;
  const round = precision === 'f16' ? roundToF16 : Math.fround;
  const wants = (role: KernelRole) => !options.roles || options.roles.includes(role);
  const program = lowerPlan(syntheticPlan(KERNEL_CASES), backend.target, { precision });
  const measured: MeasuredError[] = [];
  afterAll(() => options.report?.(measured));

  KERNEL_CASES.forEach((c, index) => {
    const name = caseName(c);
    const kernelFor = (role: KernelRole) => {
      const kernel = program.kernels.find((k) => k.role === role && k.layers.includes(name));
      if (!kernel) throw new Error(`no ${role} kernel for ${name}`);
      return kernel;
    };
    const data = caseData(c, 1000 + index);
    const run = (role: KernelRole, tokens: number, inputs: Record<string, HostData | undefined>, entryPoints?: readonly string[]) => {
      const defined = Object.fromEntries(Object.entries(inputs).filter((entry): entry is [string, HostData] => entry[1] !== undefined));
      return backend.runKernel(program, kernelFor(role), { tokens, adapterScale: ADAPTER_SCALE, inputs: defined, ...(entryPoints ? { entryPoints } : {}) });
    };
    const check = (role: KernelRole, tokens: number | null, output: string, got: HostData | undefined, ref: ArrayLike<number>) => {
      if (!got) throw new Error(`${role} returned no ${output}`);
      const error = relativeL2Error(got, ref);
      measured.push({ kernel: kernelFor(role).name, tokens, output, error });
      expect(error, `${output} of ${role} (T = ${tokens}) relative error`).toBeLessThanOrEqual(tolerance);
    };
    const quantizedInputs = {
      qweight: data.qweight, groupScales: f32(data.quantized.scales), groupZeros: f32(data.quantized.zeros),
    };
    const adapterInputs = data.adapter ? { adapterA: f32(data.adapter.a), adapterB: f32(data.adapter.b) } : {};

    describe(name, () => {
      if (wants('quantize')) {
        it('quantize: RTN codes and zeros exact (but exact ties), scales within 2 f32 ulps', async () => {
          // The quantize kernels read W as a checkpoint stores it, [out, in]: data.weight transposed.
          const stored = new Float32Array(data.weight.length);
          for (let i = 0; i < data.paddedInFeatures; i++) for (let o = 0; o < c.outFeatures; o++) stored[o * data.paddedInFeatures + i] = data.weight[i * c.outFeatures + o]!;
          const out = await run('quantize', 0, { weight: stored });
          // Symmetric RTN puts the group's extreme weight exactly on a tie (w/s = ±(2^b − 1)/2),
          // where the code depends on the last bit of s: f32 and float64 may round it apart.
          // Any other difference is a bug.
          const codes = out['codes']!;
          const N = c.outFeatures;
          let ties = 0;
          data.rtn.q.forEach((expected, i) => {
            if (codes[i] === expected) return;
            const group = Math.floor(Math.floor(i / N) / c.group) * N + (i % N);
            const quotient = data.weight[i]! / data.rtn.scales[group]!;
            const atTie = Math.abs(Math.abs(quotient - Math.trunc(quotient)) - 0.5) < 1e-5 && Math.abs(codes[i]! - expected) === 1;
            expect(atTie, `code ${i}: ${codes[i]} vs ${expected}, w/s = ${quotient}`).toBe(true);
            ties++;
          });
          measured.push({ kernel: kernelFor('quantize').name, tokens: null, output: 'codes off by one at exact ties', error: ties });
          // −0 and +0 are the same zero point (a group whose minimum is 0 gives round(−0 / s) = −0).
          expect(Array.from(out['groupZeros']!, (z) => z + 0)).toEqual(Array.from(data.rtn.zeros, (z) => z + 0));
          const scales = out['groupScales']!;
          let worst = 0;
          data.rtn.scales.forEach((s, i) => (worst = Math.max(worst, Math.abs(scales[i]! - s) / s)));
          measured.push({ kernel: kernelFor('quantize').name, tokens: null, output: 'scales (max elementwise)', error: worst });
          expect(worst).toBeLessThanOrEqual(2 ** -22);
        });
      }
      if (wants('pack')) {
        it('pack and unpack: bit-exact GPTQ v1 words', async () => {
          const packed = await run('pack', 0, { codes: u32(data.rtn.q) }, ['packQweight']);
          expect(Array.from(packed['qweight']!)).toEqual(Array.from(data.qweight));
          const unpacked = await run('pack', 0, { qweight: data.qweight }, ['unpackQweight']);
          expect(Array.from(unpacked['codes']!)).toEqual(Array.from(data.rtn.q));
        });
      }
      if (wants('dequantize')) {
        it('dequantize', async () => {
          const out = await run('dequantize', 0, quantizedInputs);
          check('dequantize', null, 'weight', out['weight'], data.dense);
        });
      }
      if (wants('merge') && data.adapter) {
        it('merge: adapter folded into float zeros', async () => {
          const out = await run('merge', 0, { groupScales: quantizedInputs.groupScales, groupZeros: quantizedInputs.groupZeros, ...adapterInputs });
          check('merge', null, 'mergedZeros', out['mergedZeros'], mergeAdapterIntoZeros(data.quantized, data.adapter!).zeros);
        });
      }
      const forwardRoles = (['forward', 'decode'] as const).filter(wants);
      for (const role of forwardRoles) {
        for (const tokens of role === 'decode' ? DECODE_TOKEN_COUNTS : TOKEN_COUNTS) {
          it(`${role} T=${tokens}: y, u, v`, async () => {
            const t = tokenData(c, data, tokens, 7 * tokens + index, round);
            const out = await run(role, tokens, { input: t.x, ...quantizedInputs, ...adapterInputs, dropoutMultiplier: t.multiplier });
            if (data.adapter) {
              check(role, tokens, 'u', out['pooledInput'], t.forward.u!);
              check(role, tokens, 'v', out['adapterActivation'], t.forward.v!);
            }
            check(role, tokens, 'y', out['output'], t.forward.y);
          });
        }
      }
      for (const tokens of TOKEN_COUNTS) {
        if (wants('backward_data')) {
          it(`backward_data T=${tokens}: dx`, async () => {
            const t = tokenData(c, data, tokens, 7 * tokens + index, round);
            const out = await run('backward_data', tokens, { outputGrad: t.dy, ...quantizedInputs, pooledInputGrad: t.du });
            check('backward_data', tokens, 'dx', out['inputGrad'], t.backward.dx);
          });
        }
        if (wants('adapter_grad') && data.adapter) {
          it(`adapter_grad T=${tokens}: dv, du, dA, dB`, async () => {
            const t = tokenData(c, data, tokens, 7 * tokens + index, round);
            const out = await run('adapter_grad', tokens, {
              outputGrad: t.dy, pooledInput: t.savedU, adapterActivation: t.savedV, ...adapterInputs, dropoutMultiplier: t.multiplier,
            });
            check('adapter_grad', tokens, 'dv', out['adapterActivationGrad'], t.backward.dv!);
            check('adapter_grad', tokens, 'du', out['pooledInputGrad'], t.backward.du!);
            check('adapter_grad', tokens, 'dA', out['adapterAGrad'], t.backward.dA!);
            check('adapter_grad', tokens, 'dB', out['adapterBGrad'], t.backward.dB!);
          });
        }
      }
    });
  });
}
