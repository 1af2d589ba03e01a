// The quantized linear layers' dequantize + cuBLAS path (src/runtime/cuda/gemm-linear.ts) on the
// simulated device: with the threshold at 16 tokens, the shared compiled-linear cases (bits 2, 3,
// 4 and 8, ragged groups, sum and mean pooling, dropout, no adapter, fractional zeros) run their
// calls of 16 or more tokens as dequantize → GEMMs and the shorter ones on the fused kernels, and
// either way y, u, v, dx, dA and dB match the TypeScript op; forced onto the GEMM path, every
// case does. The GEMM calls are the simulated
// device's float64 GEMM on the operands the path hands it (layouts, transposes, alpha, beta).
// The adapter's forward product is stacked into the base GEMM ([x | v]·[Ŵ ; σB], the default) or
// a GEMM of its own (QALC_CUDA_ADAPTER_GEMM=separate): both checked against float64 on the
// operands the device held, the stacked one at least as close, and everything else the same bits.
// dx's adapter term, c·unpool(du), is the unpool model op's: checked alone against float64 (it is
// a small part of dx at mean pooling's c = 1/g, below the whole-dx tolerance), and the op's
// launcher on ragged, padded shapes.
import { beforeAll, describe, expect, it } from 'vitest';
import type { CudaManifestKernel } from '../../../src/backends/manifest.ts';
import { poolingFactor } from '../../../src/reference/adapter.ts';
import { unpoolGroups } from '../../../src/reference/pooling.ts';
import { qaloraBackward, qaloraForward } from '../../../src/reference/qalora-layer.ts';
import { dequantize } from '../../../src/quant/dequantize.ts';
import { weightOf } from '../../../src/runtime/compiled-linear.ts';
import { loadCompiledKernels } from '../../../src/runtime/compiled-kernels.ts';
import type { CudaFunction, KernelParameter } from '../../../src/runtime/cuda/cuda.ts';
import { describeDeviceOps, deviceOps, type DeviceOps } from '../../../src/runtime/cuda/device-ops.ts';
import { deviceUnpool } from '../../../src/runtime/cuda/device-unpool.ts';
import { dropoutSeedWord } from '../../../src/runtime/cuda/dropout-seed.ts';
import { adapterGemmOf, linearPathOf, type GemmLinearOptions } from '../../../src/runtime/cuda/gemm-linear.ts';
import { deviceStacking } from '../../../src/runtime/cuda/device-stacking.ts';
import { bf16Bits, bf16Value } from '../../../src/runtime/cuda/host-data.ts';
import { modelOpLauncher } from '../../../src/runtime/cuda/model-op-launcher.ts';
import { dropoutDraws, expandDropoutMask } from '../../../src/runtime/typescript/dropout-draws.ts';
import type { Floats } from '../../../src/runtime/typescript/floats.ts';
import { TYPESCRIPT_OPS } from '../../../src/runtime/typescript/ops.ts';
import type { Plan } from '../../../src/plan/plan.ts';
import { createRng } from '../../../src/reference/random.ts';
import { syntheticPlan } from '../../ir/kernel-cases.ts';
import { relativeL2Error } from '../../support/relative-error.ts';
import { COMPILED_LINEAR_CASES, kernelCaseOf, runLinearCase } from '../compiled-linear-suite.ts';
import { linearCaseData, type LinearCase } from '../linear-case.ts';
import { SimulatedModelOpDevice } from './simulated-model-ops.ts';

const MIN_TOKENS = 16;
const QUANTIZED = COMPILED_LINEAR_CASES.filter((c) => c.bits !== null);

async function compiledFor(plan: Plan) {
  const { manifest } = await loadCompiledKernels(plan, { targets: ['cuda'] });
  const linear = manifest.kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda');
  const image = <M>(m: M) => ({ manifest: m, fatbin: new Uint8Array(), origin: 'compiled' as const });
  return { linear, modelOps: manifest.modelOps, kernels: { kernels: linear.map(image), modelOps: manifest.modelOps.map(image) } };
}

type Compiled = Awaited<ReturnType<typeof compiledFor>>;

function opsOn(compiled: Compiled, options: GemmLinearOptions, withGemm = true, modelOps = compiled.kernels.modelOps): { ops: DeviceOps; device: SimulatedModelOpDevice } {
  const device = new SimulatedModelOpDevice(compiled.linear, compiled.modelOps);
  if (!withGemm) device.withoutGemm();
  return { device, ops: deviceOps(device, { ...compiled.kernels, modelOps }, TYPESCRIPT_OPS, 'bf16', options) };
}

function expectMatches(actual: Record<string, Floats>, expected: Record<string, Floats>, name: string): void {
  for (const [output, value] of Object.entries(expected)) {
    expect(relativeL2Error(actual[output]!, value), `${name}: ${output}`).toBeLessThanOrEqual(2e-2);
  }
}

/** The simulated device, keeping dx as each unpool launch found and left it. */
class UnpoolWatchingDevice extends SimulatedModelOpDevice {
  readonly unpools: { readonly before: Float32Array; readonly after: Float32Array; readonly scalars: Readonly<Record<string, number>> }[] = [];

  constructor(linear: readonly CudaManifestKernel[], private readonly ops: Compiled['modelOps']) {
    super(linear, ops);
  }

  override launch(fn: CudaFunction, grid: readonly number[], block: readonly number[], shared: number, parameters: readonly KernelParameter[]): void {
    const entry = this.ops.flatMap((k) => k.entryPoints).find((e) => e.symbol === fn.symbol);
    if (entry === undefined || !fn.symbol.startsWith('unpool_') || !fn.symbol.endsWith('__accumulate')) return super.launch(fn, grid, block, shared, parameters);
    const at = (name: string) => parameters[entry.parameters.findIndex((p) => p.name === name)]!.value;
    const dx = () => new Float32Array(this.memory.get(at('inputGrad') as bigint)!.slice().buffer);
    const before = dx();
    super.launch(fn, grid, block, shared, parameters);
    // The seed is the word the kernel read when it ran (dropout-seed.ts).
    const seed = new Uint32Array(this.memory.get(at('seedWord') as bigint)!.slice(0, 4).buffer)[0]!;
    const scalars = { ...Object.fromEntries(entry.parameters.filter((p) => p.type !== 'pointer').map((p) => [p.name, at(p.name) as number])), seed };
    this.unpools.push({ before, after: dx(), scalars });
  }
}

/** The case's c·unpool(du) in float64 from its own inputs (du = drop(σ·dy·Bᵀ·Aᵀ)), T×K. */
function unpoolTermFloat64(c: (typeof QUANTIZED)[number]): Float64Array {
  const data = linearCaseData(c);
  const adapter = data.layer.adapter!, weight = weightOf(data.layer);
  const groups = c.K / c.group;
  const layer = {
    inFeatures: c.K, outFeatures: c.N, weight: dequantize(weight),
    adapter: { groupSize: c.group, rank: c.rank, pooling: adapter.pooling, scaling: adapter.scaling, a: Float64Array.from(adapter.a), b: Float64Array.from(adapter.b) },
  };
  const mask = data.saved?.mask === undefined ? undefined : { keep: expandDropoutMask(data.saved.mask, c.rows * groups, adapter.dropout), p: adapter.dropout };
  const saved = qaloraForward(layer, Float64Array.from(data.x), c.rows, mask);
  const { du } = qaloraBackward(layer, Float64Array.from(data.dy), saved, c.rows, mask);
  return unpoolGroups(du, c.rows, c.K, c.group, adapter.pooling);
}

describe('cuda linear layers on dequantize + cuBLAS (simulated device)', () => {
  let compiled: Compiled;
  beforeAll(async () => {
    compiled = await compiledFor(syntheticPlan(QUANTIZED.flatMap(kernelCaseOf)));
  }, 120_000);

  it.each(QUANTIZED)('$name: the TypeScript op\'s y, u, v, dx, dA, dB, on the path its T selects', async (c) => {
    const { ops, device } = opsOn(compiled, { path: 'auto', minTokens: MIN_TOKENS });
    const actual = await runLinearCase(ops, c);
    expectMatches(actual, await runLinearCase(TYPESCRIPT_OPS, c), c.name);
    const onGemm = c.rows >= MIN_TOKENS;
    expect([ops.stats.gemmForward, ops.stats.gemmBackward]).toEqual(onGemm ? [1, 1] : [0, 0]);
    expect([ops.stats.compiledForward, ops.stats.compiledBackward]).toEqual([1, 1]);
    const launched = device.launched.join(' ');
    if (onGemm) {
      // Ŵ dequantized for each direction, then only GEMMs: no fused forward or backward_data kernel.
      expect(device.launched.filter((s) => s.startsWith('dequantize_'))).toHaveLength(2);
      // y = x·Ŵ (with an adapter y = [x | v]·[Ŵ ; σB]: x, v and σB put there by the convert
      // op) and dx = dy·Ŵᵀ; with an adapter also dv = σ·dy·Bᵀ, dB += σ·vᵀ·dy,
      // dA += drop(u)ᵀ·dv and d drop(u) = dv·Aᵀ, drop(u) and dx += c·unpool(mask ⊙ d drop(u))
      // on the unpool op, no GEMM.
      expect(device.launched.filter((s) => s === 'gemm')).toHaveLength(c.rank === 0 ? 2 : 6);
      expect(device.modelOpLaunches.filter((s) => s === 'convert.copyActivation')).toHaveLength(c.rank === 0 ? 0 : 2);
      expect(device.modelOpLaunches.filter((s) => s === 'convert.scaledToActivation')).toHaveLength(c.rank === 0 ? 0 : 1);
      expect(ops.stats.stackedForward).toBe(c.rank === 0 ? 0 : 1);
      expect(device.modelOpLaunches.filter((s) => s === 'unpool.accumulate')).toHaveLength(c.rank === 0 ? 0 : 1);
      expect(device.modelOpLaunches.filter((s) => s === 'unpool.dropPooled')).toHaveLength(c.rank === 0 ? 0 : 1);
      expect(launched).not.toMatch(/(^| )(forward|decode|backward_data)_k\S*__(forward|decode|backwardData)/);
      if (c.rank > 0) {
        expect(launched).toMatch(/__adapterActivations/);
        // No adapter_grad launch: its four products were cuBLAS's, the mask the unpool op's; the
        // dropout multipliers are made once, for the forward's prologue.
        expect(launched).not.toMatch(/adapter_grad_/);
        expect(device.modelOpLaunches.filter((s) => s === 'dropout.multipliers').length).toBeLessThanOrEqual(1);
      }
    } else {
      expect(launched).not.toMatch(/dequantize_|gemm/);
    }
    expect(ops.launches()).toBe(device.launched.length + device.modelOpLaunches.length);
    // And forced onto the GEMM path at its T (below the threshold too): the same values.
    const forced = opsOn(compiled, { path: 'gemm' });
    expectMatches(await runLinearCase(forced.ops, c), await runLinearCase(TYPESCRIPT_OPS, c), `${c.name}, QALC_CUDA_LINEAR=gemm`);
    expect([forced.ops.stats.gemmForward, forced.ops.stats.gemmBackward]).toEqual([1, 1]);
  });

  it('QALC_CUDA_LINEAR=gemm serves every T, fused none; a port without a GEMM keeps the fused kernels and says so', async () => {
    const decode = QUANTIZED.find((c) => c.rows === 1)!;
    const expected = await runLinearCase(TYPESCRIPT_OPS, decode);
    const forced = opsOn(compiled, { path: linearPathOf('gemm') });
    expectMatches(await runLinearCase(forced.ops, decode), expected, 'gemm at T = 1');
    expect(forced.ops.stats.gemmForward).toBe(1);
    expect(describeDeviceOps(forced.ops)).toMatch(/on dequantize \+ cuBLAS: 1 forward, 1 backward \(QALC_CUDA_LINEAR=gemm, 1 forward with the adapter stacked into the base GEMM\); on the fused kernels: 0 forward, 0 backward/);
    const large = QUANTIZED.find((c) => c.rows === 70)!;
    const fused = opsOn(compiled, { path: linearPathOf('fused'), minTokens: MIN_TOKENS });
    expectMatches(await runLinearCase(fused.ops, large), await runLinearCase(TYPESCRIPT_OPS, large), 'fused at T = 70');
    expect(fused.ops.stats.gemmForward + fused.ops.stats.gemmBackward).toBe(0);
    const noGemm = opsOn(compiled, { path: 'gemm' }, false);
    expectMatches(await runLinearCase(noGemm.ops, large), await runLinearCase(TYPESCRIPT_OPS, large), 'without a GEMM');
    expect(noGemm.device.launched).not.toContain('gemm');
    expect(describeDeviceOps(noGemm.ops)).toMatch(/on dequantize \+ cuBLAS: 0 forward, 0 backward \(the port has no GEMM\); on the fused kernels: 1 forward, 1 backward/);
    expect(() => linearPathOf('cublas')).toThrow(/QALC_CUDA_LINEAR=cublas: expected fused, gemm or auto/);
    expect(linearPathOf(undefined)).toBe('auto');
  });

  // The quantized adapted cases (one row among them) and two more: T = 130 with rank 5 (r not a
  // multiple of 8, K + r = 69 padded to rows of 72), K = 35 in ragged groups at T = 257.
  const STACKED = [
    ...QUANTIZED.filter((c) => c.rank > 0),
    { name: '4-bit, group 16, rank 5, 130 rows', rows: 130, K: 64, N: 41, group: 16, bits: 4, rank: 5, pooling: 'mean' },
    { name: '3-bit, group 7 (ragged), rank 3, sum, dropout, 257 rows', rows: 257, K: 35, N: 13, group: 7, bits: 3, rank: 3, pooling: 'sum', dropout: 0.3 },
  ] as const satisfies readonly LinearCase[];
  let stackedCompiled: Compiled;
  beforeAll(async () => {
    stackedCompiled = await compiledFor(syntheticPlan(STACKED.flatMap(kernelCaseOf)));
  }, 120_000);

  it.each(STACKED)('$name: the stacked forward\'s y against float64 on the device\'s operands, at least as close as the separate GEMM\'s; u, v, dx, dA, dB the same bits', async (c) => {
    const stacked = opsOn(stackedCompiled, { path: 'gemm' }), separate = opsOn(stackedCompiled, { path: 'gemm', adapterGemm: adapterGemmOf('separate') });
    const [got, old] = [await runLinearCase(stacked.ops, c), await runLinearCase(separate.ops, c)];
    expect([stacked.ops.stats.stackedForward, separate.ops.stats.stackedForward]).toEqual([1, 0]);
    expect(stacked.device.launched.filter((s) => s === 'gemm')).toHaveLength(6);
    expect(separate.device.launched.filter((s) => s === 'gemm')).toHaveLength(7);
    expect(separate.device.modelOpLaunches.filter((s) => s.startsWith('convert.copy') || s.startsWith('convert.scaled'))).toEqual([]);
    // The backward does not change, nor do the prologue's u and v.
    for (const name of ['u', 'v', 'dx', 'dA', 'dB']) expect(got[name], name).toEqual(old[name]);
    // y in float64 from what the GEMMs read: x in bf16, Ŵ as the dequantize kernel rounds it, v
    // as the prologue wrote it (bf16), B in float32.
    const data = linearCaseData(c), adapter = data.layer.adapter!;
    const round = (value: number) => bf16Value(bf16Bits(value));
    const x = Float64Array.from(data.x, round), weight = dequantize(weightOf(data.layer)).map(round), v = got['v']!;
    const y64 = new Float64Array(c.rows * c.N);
    for (let t = 0; t < c.rows; t++) {
      for (let n = 0; n < c.N; n++) {
        let base = 0, update = 0;
        for (let k = 0; k < c.K; k++) base += x[t * c.K + k]! * weight[k * c.N + n]!;
        for (let j = 0; j < c.rank; j++) update += v[t * c.rank + j]! * adapter.b[j * c.N + n]!;
        y64[t * c.N + n] = base + adapter.scaling * update;
      }
    }
    const [stackedError, separateError] = [relativeL2Error(got['y']!, y64), relativeL2Error(old['y']!, y64)];
    // One rounding of y and of σB, each half of bf16's 2⁻⁷ spacing at the most.
    expect(stackedError, `${c.name}: stacked ${stackedError}, separate ${separateError}`).toBeLessThanOrEqual(2 ** -8);
    expect(stackedError).toBeLessThanOrEqual(separateError);
  });

  it('the stacked forward needs the convert op\'s copies: kernels compiled before them keep the separate GEMM, with the same values', async () => {
    const c = STACKED.find((k) => k.rows === 130)!;
    const modelOps = stackedCompiled.kernels.modelOps.map((k) => (k.manifest.op !== 'convert' ? k
      : { ...k, manifest: { ...k.manifest, entryPoints: k.manifest.entryPoints.filter((e) => e.name !== 'copyActivation' && e.name !== 'scaledToActivation') } }));
    const old = opsOn(stackedCompiled, { path: 'gemm' }, true, modelOps);
    const separate = opsOn(stackedCompiled, { path: 'gemm', adapterGemm: 'separate' });
    expect(await runLinearCase(old.ops, c)).toEqual(await runLinearCase(separate.ops, c));
    expect(old.ops.stats.stackedForward).toBe(0);
    expect(() => adapterGemmOf('fused')).toThrow(/QALC_CUDA_ADAPTER_GEMM=fused: expected stacked or separate/);
    expect([adapterGemmOf(undefined), adapterGemmOf('')]).toEqual(['stacked', 'stacked']);
  });

  it('the convert op\'s copies: copyActivation between row strides and offsets (the bits), scaledToActivation rounding scale·x once; refused layouts', () => {
    const device = new SimulatedModelOpDevice(compiled.linear, compiled.modelOps);
    const images = compiled.modelOps.map((manifest) => ({ manifest, fatbin: new Uint8Array(), origin: 'compiled' as const }));
    const stacking = deviceStacking(modelOpLauncher(device, images))!;
    const rng = createRng(3);
    // 5 rows of 300 columns (grid.y = 2) from rows of 303 at element 7, into rows of 310 at element 11; the rest untouched.
    const [rows, columns, sourceStride, stride] = [5, 300, 303, 310];
    const source = Uint16Array.from({ length: 7 + rows * sourceStride }, () => bf16Bits(rng.normal()));
    const out = Uint16Array.from({ length: 11 + rows * stride }, (_, i) => i);
    const [sourceBuffer, outBuffer] = [device.alloc(source.byteLength), device.alloc(out.byteLength)];
    sourceBuffer.upload(source);
    outBuffer.upload(out);
    stacking.columns({ buffer: outBuffer, type: 'bf16', rows, columns, ld: stride, offset: 22 }, { buffer: sourceBuffer, type: 'bf16', rows, columns, ld: sourceStride, offset: 14 });
    const got = new Uint16Array(out.length);
    outBuffer.download(got);
    const expected = out.map((value, i) => {
      const row = Math.floor((i - 11) / stride), column = (i - 11) % stride;
      return i >= 11 && column < columns ? source[7 + row * sourceStride + column]! : value;
    });
    expect(got).toEqual(expected);
    // σ·B: 3 rows of 260 float32 into rows of 264 from element 5.
    const b = Float32Array.from({ length: 3 * 260 }, () => rng.normal());
    const bBuffer = device.alloc(b.byteLength), scaledBuffer = device.alloc((5 + 3 * 264) * 2);
    bBuffer.upload(b);
    scaledBuffer.upload(new Uint16Array(5 + 3 * 264).fill(0x7fc1));
    const scale = 0.3;
    stacking.scaledRows({ buffer: scaledBuffer, type: 'bf16', rows: 3, columns: 260, ld: 264, offset: 10 }, bBuffer, scale);
    const scaled = new Uint16Array(5 + 3 * 264);
    scaledBuffer.download(scaled);
    scaled.forEach((bits, i) => {
      const row = Math.floor((i - 5) / 264), column = (i - 5) % 264;
      expect(bits, `element ${i}`).toBe(i >= 5 && column < 260 ? bf16Bits(Math.fround(Math.fround(scale) * b[row * 260 + column]!)) : 0x7fc1);
    });
    const matrix = { buffer: outBuffer, type: 'bf16' as const, rows: 2, columns: 4 };
    expect(() => stacking.columns(matrix, { ...matrix, type: 'f16' })).toThrow(/the source is f16/);
    expect(() => stacking.columns(matrix, { ...matrix, columns: 3 })).toThrow(/copying 2×3 into 2×4/);
    expect(() => stacking.columns({ ...matrix, offset: 3 }, matrix)).toThrow(/starts at byte 3/);
    expect(() => stacking.scaledRows({ ...matrix, rows: 1000 }, bBuffer, 1)).toThrow(/1000×4 float32 values from a buffer/);
  });

  // Group 43 of K = 172 with mean pooling (c = 1/43, float4 rows), group 7 of K = 35 with sum
  // pooling and dropout (c = 1, rows of 35: the scalar path).
  it.each(QUANTIZED.filter((c) => c.rank > 0 && c.K % c.group === 0 && [43, 7].includes(c.group)))('$name: dx\'s c·unpool(du) is the unpool op\'s, as float64 has it', async (c) => {
    const device = new UnpoolWatchingDevice(compiled.linear, compiled.modelOps);
    const ops = deviceOps(device, compiled.kernels, TYPESCRIPT_OPS, 'bf16', { path: 'gemm' });
    await runLinearCase(ops, c);
    expect(device.unpools).toHaveLength(1);
    const [{ before, after, scalars }] = device.unpools as [UnpoolWatchingDevice['unpools'][number]];
    const { seed, offset, threshold, keptScale, ...sizes } = scalars;
    expect(sizes).toEqual({ factor: poolingFactor(c.pooling ?? 'mean', c.group), rows: c.rows, columns: c.K, groupSize: c.group, stride: c.K / c.group });
    // The layer's mask, as the forward's dropout multipliers were made (none: everything kept).
    const mask = linearCaseData(c).saved?.mask;
    // Without a mask the word's value does not matter (threshold 0 keeps everything).
    expect({ seed: mask === undefined ? 0 : seed, offset, threshold: threshold! > 0, keptScale }).toEqual(mask === undefined
      ? { seed: 0, offset: 0, threshold: false, keptScale: 1 }
      : { seed: mask.seed, offset: mask.offset % 2 ** 32, threshold: true, keptScale: Math.fround(1 / (1 - c.dropout!)) });
    const term = Float64Array.from({ length: c.rows * c.K }, (_, i) => after[i]! - before[i]!);
    // du went through bf16 (dy, dv and du are activations): the term to bf16's rounding.
    expect(relativeL2Error(term, unpoolTermFloat64(c))).toBeLessThanOrEqual(2e-2);
  });

  it('the unpool op\'s launcher: ragged and padded shapes, a padded du stride, c = 1/g, a dropout mask, against float64; drop(u); refused layouts', () => {
    const device = new SimulatedModelOpDevice(compiled.linear, compiled.modelOps);
    const images = compiled.modelOps.map((manifest) => ({ manifest, fatbin: new Uint8Array(), origin: 'compiled' as const }));
    const unpool = deviceUnpool(modelOpLauncher(device, images), dropoutSeedWord((bytes) => device.alloc(bytes)))!;
    expect(unpool).toBeDefined();
    const rng = createRng(7);
    // K = 35, g = 7; K = 170, g = 43 (a padded in_features: its last group holds 41); K = 4100, g = 1025 (grid.y > 1); g = 1.
    for (const [rows, K, g, stride] of [[5, 35, 7, 8], [3, 170, 43, 4], [2, 4100, 1025, 6], [4, 9, 1, 9]] as const) {
      const groups = Math.ceil(K / g);
      const du = Float32Array.from({ length: rows * stride }, (_, i) => (i % stride < groups ? bf16Value(bf16Bits(rng.normal())) : Number.NaN));
      const dx = Float32Array.from({ length: rows * K }, () => rng.normal());
      const duBuffer = device.alloc(du.byteLength / 2), dxBuffer = device.alloc(dx.byteLength);
      duBuffer.upload(Uint16Array.from(du, (v) => bf16Bits(v)));
      dxBuffer.upload(dx);
      const factor = 1 / g;
      // Without dropout, then with a mask of p = 0.3 (its multipliers as the host expands them).
      for (const dropout of [undefined, { mask: dropoutDraws(11, 5 + rows), p: 0.3 }]) {
        dxBuffer.upload(dx);
        unpool.accumulate({ buffer: dxBuffer, type: 'f32', rows, columns: K }, { buffer: duBuffer, type: 'bf16', rows, columns: groups, ld: stride }, g, factor, dropout);
        const got = new Float32Array(rows * K);
        dxBuffer.download(got);
        const keep = dropout === undefined ? undefined : expandDropoutMask(dropout.mask, rows * groups, dropout.p);
        const multiplier = (j: number) => (keep === undefined ? 1 : keep[j]! / (1 - 0.3));
        const expected = Float64Array.from({ length: rows * K }, (_, i) => {
          const row = Math.floor(i / K), group = Math.floor((i % K) / g);
          return dx[i]! + factor * multiplier(row * groups + group) * du[row * stride + group]!;
        });
        expect(relativeL2Error(got, expected), `${rows}×${K}, group ${g}, ${dropout ? 'dropout' : 'no dropout'}`).toBeLessThanOrEqual(1e-6);
      }
      // drop(u) from rows of `stride`, into a dense [rows, groups], rounded to bf16 once.
      const droppedBuffer = device.alloc(rows * groups * 2);
      const dropout = { mask: dropoutDraws(3, 2 ** 32 + 7 * rows), p: 0.25 };
      unpool.dropPooled({ buffer: droppedBuffer, type: 'bf16', rows, columns: groups }, { buffer: duBuffer, type: 'bf16', rows, columns: groups, ld: stride }, dropout);
      const dropped = new Uint16Array(rows * groups);
      droppedBuffer.download(dropped);
      const keep = expandDropoutMask(dropout.mask, rows * groups, dropout.p);
      for (let j = 0; j < rows * groups; j++) {
        const u = du[Math.floor(j / groups) * stride + (j % groups)]!;
        expect(bf16Value(dropped[j]!), `drop(u) entry ${j}`).toBe(bf16Value(bf16Bits(Math.fround((keep[j] ? Math.fround(1 / 0.75) : 0) * u))));
      }
    }
    const dx = { buffer: device.alloc(64), type: 'f32' as const, rows: 2, columns: 8 };
    const du = { buffer: device.alloc(64), type: 'bf16' as const, rows: 2, columns: 2 };
    expect(() => unpool.accumulate(dx, { ...du, type: 'f16' }, 4, 1)).toThrow(/du is f16/);
    expect(() => unpool.accumulate(dx, du, 3, 1)).toThrow(/ceil\(8 \/ 3\) groups/);
    expect(() => unpool.accumulate({ ...dx, type: 'bf16' }, du, 4, 1)).toThrow(/dx must be dense float32/);
    expect(() => unpool.dropPooled({ ...du, ld: 4 }, du, { mask: undefined, p: 0 })).toThrow(/must be dense/);
  });

  it('an adapted layer stays on the fused kernels, saying why, when the compiled kernels have no unpool op or one without dropPooled (compiled before them)', async () => {
    const c = QUANTIZED.find((k) => k.rows === 70)!;
    const withoutUnpool = compiled.kernels.modelOps.filter((k) => k.manifest.op !== 'unpool');
    // An unpool op compiled before dropPooled (and the mask arguments of its accumulate).
    const oldUnpool = compiled.kernels.modelOps.filter((k) => k.manifest.op === 'unpool').map((k) => ({ ...k, manifest: { ...k.manifest, entryPoints: k.manifest.entryPoints.filter((e) => e.name !== 'dropPooled') } }));
    for (const modelOps of [withoutUnpool, [...withoutUnpool, ...oldUnpool]]) {
      const device = new SimulatedModelOpDevice(compiled.linear, compiled.modelOps);
      const ops = deviceOps(device, { ...compiled.kernels, modelOps }, TYPESCRIPT_OPS, 'bf16', { path: 'gemm' });
      expectMatches(await runLinearCase(ops, c), await runLinearCase(TYPESCRIPT_OPS, c), 'no unpool op');
      expect([ops.stats.gemmForward, ops.stats.gemmBackward, ops.stats.compiledForward, ops.stats.compiledBackward]).toEqual([0, 0, 1, 1]);
      expect(describeDeviceOps(ops)).toMatch(/64×72 4-bit, group 32, adapter rank 8: the compiled kernels have no unpool model op with dropPooled \(compiled before it: run qalc compile again\)/);
    }
  });

  it('fp16 activations: the GEMM operands in f16', async () => {
    const c = QUANTIZED.find((k) => k.rows === 70)!;
    const plan = syntheticPlan(kernelCaseOf(c));
    const fp16 = await compiledFor({ ...plan, targets: { cuda: { activation: 'fp16' } } });
    expect(fp16.linear.every((k) => k.kernel.endsWith('_f16'))).toBe(true);
    const device = new SimulatedModelOpDevice(fp16.linear, fp16.modelOps);
    const ops = deviceOps(device, fp16.kernels, TYPESCRIPT_OPS, 'f16', { path: 'gemm' });
    expectMatches(await runLinearCase(ops, c), await runLinearCase(TYPESCRIPT_OPS, c), 'fp16');
    expect(ops.stats.gemmForward).toBe(1);
  }, 60_000);
});
