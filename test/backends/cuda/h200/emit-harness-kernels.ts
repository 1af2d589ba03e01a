// Emits the CUDA kernels the H200 correctness harness runs, and the two files that describe
// them: registry.gen.cpp (the C++ table harness.cpp dispatches on: each kernel's bindings and
// host launchers) and kernels.json (the same for check_kernels.py: shapes, parts, and the layer
// parameters its float64 reference needs). Shapes are compile-time constants of the kernels,
// so the case list lives here: ragged K and N, bits 2/3/4/8, groups 16/32/43/64/128, zero
// padding, symmetric, dropout, mean and sum pooling, in fp16 and bf16.
//
// Kernels whose tensor-core variant uses wgmma on sm_90a (choose-cuda.ts: forward and
// backward_data) are emitted twice: as the IR chooses (wgmma on the sm_90a build) and again with
// wgmma turned off, named <kernel>_mmasync, so one sm_90a harness checks both bodies on the same
// GPU. Cases marked `timed` are large layers (forward and backward_data only) that run.sh also
// times (qalc-cuda-harness --time) in both forms.
//
//   npx tsx test/backends/cuda/h200/emit-harness-kernels.ts OUT_DIR
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { emitCuda, type EmittedCudaKernel } from '../../../../src/backends/cuda/emit.ts';
import type { KernelProgram, LayerConfig, ScalarType, SizeExpr } from '../../../../src/ir/kernel-ir.ts';
import { lowerPlan } from '../../../../src/ir/lower.ts';
import { configOfKernel } from '../../../../src/ir/passes/share-layers.ts';
import type { AdapterPlan, KernelRole, LayerPlan, Plan } from '../../../../src/plan/plan.ts';

interface HarnessCase {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly bits: 2 | 3 | 4 | 8;
  readonly group: number;
  readonly pad?: boolean;
  readonly symmetric?: boolean;
  readonly adapter?: { readonly rank: number; readonly pooling: 'mean' | 'sum'; readonly dropout?: boolean };
  /** Kernel roles to emit; all of them by default. */
  readonly roles?: readonly KernelRole[];
  /** Timed by run.sh at TIMING_TOKENS. */
  readonly timed?: boolean;
}

export const HARNESS_CASES: readonly HarnessCase[] = [
  { inFeatures: 172, outFeatures: 100, bits: 4, group: 43, adapter: { rank: 4, pooling: 'mean' } },
  { inFeatures: 96, outFeatures: 72, bits: 3, group: 16, adapter: { rank: 8, pooling: 'mean', dropout: true } },
  { inFeatures: 256, outFeatures: 200, bits: 2, group: 32, adapter: { rank: 16, pooling: 'sum' } },
  { inFeatures: 192, outFeatures: 136, bits: 8, group: 64, adapter: { rank: 8, pooling: 'mean' } },
  { inFeatures: 384, outFeatures: 264, bits: 4, group: 128, adapter: { rank: 64, pooling: 'mean', dropout: true } },
  { inFeatures: 200, outFeatures: 40, bits: 4, group: 32, pad: true, adapter: { rank: 4, pooling: 'mean' } },
  { inFeatures: 80, outFeatures: 24, bits: 3, group: 16, symmetric: true },
  { inFeatures: 129, outFeatures: 33, bits: 3, group: 43, adapter: { rank: 2, pooling: 'mean' } },
  { inFeatures: 1024, outFeatures: 1000, bits: 4, group: 32, adapter: { rank: 16, pooling: 'mean' } },
  // A 7B-sized projection, forward and backward_data only: checked like the others, and timed at T = 4096.
  { inFeatures: 4096, outFeatures: 4096, bits: 4, group: 128, adapter: { rank: 16, pooling: 'mean' }, roles: ['forward', 'backward_data'], timed: true },
];

/** Tokens of the timed runs (run.sh). */
export const TIMING_TOKENS = 4096;

const ADAPTER_SCALE = 2;

function harnessPlan(cases: readonly HarnessCase[]): Plan {
  const layers: LayerPlan[] = cases.map((c, index) => {
    const paddedInFeatures = c.pad ? Math.ceil(c.inFeatures / c.group) * c.group : c.inFeatures;
    const groups = paddedInFeatures / c.group;
    const adapter: AdapterPlan | null = c.adapter
      ? {
          kind: 'qalora', rank: c.adapter.rank, alpha: ADAPTER_SCALE * c.adapter.rank, scale: ADAPTER_SCALE,
          dropout: c.adapter.dropout ? 0.25 : 0, pooling: c.adapter.pooling, init: 'kaiming_uniform', dtype: 'fp32', inputWidth: groups,
        }
      : null;
    const kernels: KernelRole[] = c.roles
      ? [...c.roles]
      : ['quantize', 'pack', 'dequantize', 'forward', 'decode', 'backward_data', ...(adapter ? (['adapter_grad', 'merge'] as const) : [])];
    return {
      name: `case${index}`, hfName: `case${index}`, block: index, projection: 'case',
      inFeatures: c.inFeatures, outFeatures: c.outFeatures,
      quant: {
        bits: c.bits, group: c.group, groups, paddedInFeatures, pad: c.pad ? 'zero' : 'none', symmetric: c.symmetric ?? false,
        scaleDtype: 'fp32', zeroStorage: 'fp32', method: 'rtn',
      },
      adapter, kernels,
      sizes: { fp16Bytes: 0, weightBytes: 0, scaleBytes: 0, zeroBytes: 0, adapterParams: 0, adapterBytes: 0 },
      sources: [`test/backends/cuda/h200/emit-harness-kernels.ts:${index + 1}`],
    };
  });
  return {
    spec: 'cuda_harness',
    specFile: 'test/backends/cuda/h200/emit-harness-kernels.ts',
    model: { source: 'written', architecture: { dim: 64, hiddenDim: 172, layers: cases.length, heads: 1, vocab: 1, context: 1, kvHeads: 1, tiedEmbeddings: false } },
    layers,
    totals: { linearFp16Bytes: 0, linearQuantizedBytes: 0, adapterParams: 0, adapterBytes: 0, otherBytes: 0, modelFp16Bytes: 0, modelQuantizedBytes: 0 },
    targets: {},
  };
}

const ELEMENT_BYTES: Readonly<Record<ScalarType, number>> = { f32: 4, u32: 4, i32: 4, f16: 2, bf16: 2 };

/** Elements of a binding as perToken·T + constant (at most one dimension grows with T). */
function countOf(shape: readonly SizeExpr[]): { perToken: number; constant: number } {
  let perToken = 0;
  let constant = 1;
  for (const size of shape) {
    if (size.tokens !== 0) {
      if (perToken !== 0 || size.constant !== 0) throw new Error('the harness handles one T-sized dimension of the form a*T');
      perToken = constant * size.tokens;
      constant = 0;
    } else {
      perToken *= size.constant;
      constant *= size.constant;
    }
  }
  return { perToken, constant };
}

function layerOf(config: LayerConfig) {
  return {
    inFeatures: config.inFeatures, paddedInFeatures: config.paddedInFeatures, outFeatures: config.outFeatures,
    bits: config.bits, group: config.group, groups: config.groups, symmetric: config.symmetric,
    rank: config.adapter?.rank ?? 0, poolingFactor: config.adapter?.poolingFactor ?? 0, dropout: config.adapter?.dropout ?? false,
  };
}

const outDir = process.argv[2];
if (!outDir) throw new Error('usage: emit-harness-kernels.ts OUT_DIR');
mkdirSync(outDir, { recursive: true });

const described: object[] = [];
const declarations: string[] = [];
const tables: string[] = [];
const entries: string[] = [];
// The roles a kernel is emitted for: those of any of its layers (a case without `roles`: all).
const rolesOf = new Map(HARNESS_CASES.map((c, index) => [`case${index}`, c.roles ?? null]));
const wanted = (e: EmittedCudaKernel): boolean => e.kernel.layers.some((l) => rolesOf.get(l)?.includes(e.kernel.role) ?? true);
const timedLayers = new Set(HARNESS_CASES.flatMap((c, index) => (c.timed ? [`case${index}`] : [])));
for (const precision of ['f16', 'bf16'] as const) {
  const program = lowerPlan(harnessPlan(HARNESS_CASES), 'cuda', { precision });
  const chosen = emitCuda(program).filter(wanted);
  const withWgmma = new Set(chosen.filter((e) => e.kernel.cuda.tensorCore?.wgmma).map((e) => e.kernel.name));
  // The same program with wgmma off: the kernels that had it, renamed.
  const mmaSync = emitCuda(lowerPlan(harnessPlan(HARNESS_CASES), 'cuda', { precision, cuda: { wgmma: false } }))
    .filter((e) => withWgmma.has(e.kernel.name))
    .map((e) => ({ ...e, name: `${e.kernel.name}_mmasync`, source: e.source.replaceAll(e.kernel.name, `${e.kernel.name}_mmasync`) }));
  const emittedKernels = [...chosen.map((e) => ({ ...e, name: e.kernel.name })), ...mmaSync];
  for (const emitted of emittedKernels) {
    const { kernel, name } = emitted;
    const tensorCorePath = kernel.cuda.tensorCore ? (name.endsWith('_mmasync') || !kernel.cuda.tensorCore.wgmma ? 'mma.sync' : 'wgmma') : null;
    writeFileSync(join(outDir, `${name}.cu`), emitted.source);
    const storage = kernel.bindings.filter((b) => b.access !== 'uniform');
    const bindings = storage.map((b) => ({
      index: b.binding, name: b.name, elementType: b.elementType, elementBytes: ELEMENT_BYTES[b.elementType as ScalarType],
      written: b.access === 'read_write', ...countOf(b.shape),
      parts: b.parts.map((p) => ({ name: p.name, offset: p.offset, ...countOf(p.shape) })),
    }));
    const launchers = kernel.entryPoints.map((e) => ({ entryPoint: e.name, symbol: `${name}__${e.name}__launch` }));
    described.push({
      name, role: kernel.role, activation: kernel.dtypes.activation,
      layer: layerOf(configOfKernel(program as KernelProgram, kernel)),
      maxTokens: kernel.cuda.decode?.maxTokens ?? null,
      tensorCoreMinTokens: kernel.cuda.tensorCore?.minTokens ?? null,
      // On an sm_90a build; any other build runs mma.sync (check_kernels.py reads gencode.txt).
      tensorCorePath,
      timingTokens: kernel.layers.some((l) => timedLayers.has(l)) ? TIMING_TOKENS : null,
      bindings, launchers,
    });
    for (const l of launchers) declarations.push(`extern "C" cudaError_t ${l.symbol}(void* const*, unsigned, float, cudaStream_t);`);
    tables.push(
      `static const BindingInfo ${name}_bindings[] = {\n` +
        bindings.map((b) => `    {${b.index}, "${b.name}", ${b.elementBytes}, ${b.perToken}ull, ${b.constant}ull, ${b.written}},`).join('\n') +
        `\n};\nstatic const LauncherInfo ${name}_launchers[] = {\n` +
        launchers.map((l) => `    {"${l.entryPoint}", ${l.symbol}},`).join('\n') +
        '\n};',
    );
    entries.push(`    {"${name}", ${name}_bindings, ${bindings.length}, ${kernel.bindings.length}, ${name}_launchers, ${launchers.length}},`);
  }
}

writeFileSync(join(outDir, 'kernels.json'), `${JSON.stringify({ adapterScale: ADAPTER_SCALE, kernels: described }, null, 1)}\n`);
writeFileSync(join(outDir, 'registry.gen.cpp'), [
  '// Generated by test/backends/cuda/h200/emit-harness-kernels.ts: the kernels the harness links.',
  '#include "registry.h"',
  '',
  ...declarations,
  '',
  ...tables,
  '',
  'const KernelInfo HARNESS_KERNELS[] = {',
  ...entries,
  '};',
  `const int HARNESS_KERNEL_COUNT = ${entries.length};`,
  '',
].join('\n'));
console.log(`emitted ${entries.length} kernels to ${outDir}`);
