// Writes a set of emitted CUDA kernels and the two files that describe them, for programs that
// run them outside qalc (the H200 correctness harness, the benchmark): registry.gen.cpp (the
// C++ table harness.cpp dispatches on: each kernel's bindings and host launchers) and
// kernels.json (the same for Python: shapes, parts, and the layer parameters a float64
// reference needs). Shapes are compile-time constants of the kernels, so each caller passes
// its own list of layer cases.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { emitCuda, type EmittedCudaKernel } from '../../../../src/backends/cuda/emit.ts';
import type { KernelProgram, LayerConfig, ScalarType, SizeExpr } from '../../../../src/ir/kernel-ir.ts';
import { lowerPlan } from '../../../../src/ir/lower.ts';
import type { DecodeVariant } from '../../../../src/ir/passes/choose-cuda.ts';
import { configOfKernel } from '../../../../src/ir/passes/share-layers.ts';
import type { AdapterPlan, KernelRole, LayerPlan, Plan } from '../../../../src/plan/plan.ts';

export interface KernelSetCase {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly bits: 2 | 3 | 4 | 8;
  readonly group: number;
  readonly pad?: boolean;
  readonly symmetric?: boolean;
  readonly adapter?: { readonly rank: number; readonly pooling: 'mean' | 'sum'; readonly dropout?: boolean };
  /** Kernel roles to emit; all of them by default. */
  readonly roles?: readonly KernelRole[];
  /** Timed by the harness's run.sh at the set's timing tokens. */
  readonly timed?: boolean;
}

export interface KernelSetOptions {
  /** Also emit every kernel that uses wgmma a second time with it off, named <kernel>_mmasync. */
  readonly mmaSyncCopies: boolean;
  readonly timingTokens: number;
  readonly precisions: readonly ('f16' | 'bf16')[];
  /** Also emit every tensor-core decode kernel with these bodies (choose-cuda.ts), named <kernel>_<variant>. */
  readonly decodeVariants?: readonly DecodeVariant[];
  /** Only kernels of these roles (all when absent): a device run that checks what changed. */
  readonly onlyRoles?: readonly KernelRole[];
}

const ADAPTER_SCALE = 2;

function kernelSetPlan(cases: readonly KernelSetCase[], specFile: string): Plan {
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
      sources: [`${specFile}:${index + 1}`],
    };
  });
  return {
    spec: 'cuda_harness',
    specFile,
    model: { source: 'written', architecture: { dim: 64, hiddenDim: 172, layers: cases.length, heads: 1, vocab: 1, context: 1, kvHeads: 1, tiedEmbeddings: false, ropeTheta: 10000, rmsNormEps: 1e-5 } },
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

/** Emits `cases` into outDir: one .cu per kernel, kernels.json and registry.gen.cpp. Returns the kernel count. */
export function writeKernelSet(outDir: string, cases: readonly KernelSetCase[], specFile: string, options: KernelSetOptions): number {
  mkdirSync(outDir, { recursive: true });
  const described: object[] = [];
  const declarations: string[] = [];
  const tables: string[] = [];
  const entries: string[] = [];
  // The roles a kernel is emitted for: those of any of its layers (a case without `roles`: all).
  const rolesOf = new Map(cases.map((c, index) => [`case${index}`, c.roles ?? null]));
  const wanted = (e: EmittedCudaKernel): boolean =>
    (options.onlyRoles?.includes(e.kernel.role) ?? true) && e.kernel.layers.some((l) => rolesOf.get(l)?.includes(e.kernel.role) ?? true);
  const timedLayers = new Set(cases.flatMap((c, index) => (c.timed ? [`case${index}`] : [])));
  for (const precision of options.precisions) {
    const program = lowerPlan(kernelSetPlan(cases, specFile), 'cuda', { precision });
    const chosen = emitCuda(program).filter(wanted);
    const withWgmma = new Set(chosen.filter((e) => e.kernel.cuda.tensorCore?.wgmma).map((e) => e.kernel.name));
    // The same program with wgmma off: the kernels that had it, renamed.
    const mmaSync = options.mmaSyncCopies
      ? emitCuda(lowerPlan(kernelSetPlan(cases, specFile), 'cuda', { precision, cuda: { wgmma: false } }))
          .filter((e) => withWgmma.has(e.kernel.name))
          .map((e) => ({ ...e, name: `${e.kernel.name}_mmasync`, source: e.source.replaceAll(e.kernel.name, `${e.kernel.name}_mmasync`) }))
      : [];
    // A variant's kernel identical to the shipped one (v9 on the layers v8c already takes) is not emitted twice.
    const shippedSources = new Set(chosen.map((e) => e.source));
    const decodeCopies = (options.decodeVariants ?? []).flatMap((variant) =>
      emitCuda(lowerPlan(kernelSetPlan(cases, specFile), 'cuda', { precision, cuda: { decodeVariant: variant } }))
        .filter((e) => wanted(e) && e.kernel.cuda.decode?.kind === 'mma' && !shippedSources.has(e.source))
        .map((e) => ({ ...e, name: `${e.kernel.name}_${variant}`, source: e.source.replaceAll(e.kernel.name, `${e.kernel.name}_${variant}`) })));
    const emittedKernels = [...chosen.map((e) => ({ ...e, name: e.kernel.name })), ...mmaSync, ...decodeCopies];
    for (const emitted of emittedKernels) {
      const { kernel, name } = emitted;
      const tensorCorePath = kernel.cuda.tensorCore ? (name.endsWith('_mmasync') || !kernel.cuda.tensorCore.wgmma ? 'mma.sync' : 'wgmma')
        : kernel.cuda.adapterGrad ? 'mma.sync' : null;
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
        tensorCoreMinTokens: kernel.cuda.tensorCore?.minTokens ?? (kernel.cuda.adapterGrad ? 1 : null),
        // On an sm_90a build; any other build runs mma.sync (check_kernels.py reads gencode.txt).
        tensorCorePath,
        timingTokens: kernel.layers.some((l) => timedLayers.has(l)) ? options.timingTokens : null,
        symbols: emitted.kernelSymbols.map((symbol) => symbol.replace(kernel.name, name)),
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
    `// Generated by ${specFile}: the kernels the harness links.`,
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
  return entries.length;
}
