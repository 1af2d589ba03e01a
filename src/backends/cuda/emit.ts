// The CUDA backend: one .cu file per kernel of a program lowered for CUDA and refined by the
// CUDA pass (src/ir/passes/choose-cuda.ts), printed through templates/cuda. Every decision is
// in the IR; this file only spells it in CUDA C++. Output is deterministic: same program, same
// bytes. Every symbol comes from the kernel's name (numbers and enums) and the IR's entry
// point names; user text appears only in the header comment, through commentSafe.
import type { Constant, DispatchDim, KernelProgram, ScalarType } from '../../ir/kernel-ir.ts';
import type { CudaKernel, CudaLaunch, CudaProgram } from '../../ir/passes/choose-cuda.ts';
import { configOfKernel } from '../../ir/passes/share-layers.ts';
import { formatShape } from '../../ir/size-expr.ts';
import { headerLines } from './header.ts';
import { compileCommands } from './nvcc-flags.ts';
import { cudaTemplates } from './templates.ts';

export interface EmittedCudaKernel {
  readonly kernel: CudaKernel;
  readonly fileName: string;
  readonly source: string;
  /** extern "C" __global__ symbols, in file order. */
  readonly kernelSymbols: readonly string[];
  /** extern "C" host launchers, one per IR entry point, in IR order. */
  readonly launcherSymbols: readonly string[];
}

export const C_TYPES: Readonly<Record<ScalarType, string>> = { f32: 'float', f16: '__half', bf16: '__nv_bfloat16', u32: 'uint32_t', i32: 'int32_t' };

export const CONVERSIONS: Readonly<Record<ScalarType, readonly [toFloat: string, fromFloat: string]>> = {
  f16: ['__half2float', '__float2half_rn'],
  bf16: ['__bfloat162float', '__float2bfloat16_rn'],
  f32: ['static_cast<float>', 'static_cast<float>'],
  u32: ['static_cast<float>', 'static_cast<uint32_t>'],
  i32: ['static_cast<float>', 'static_cast<int32_t>'],
};

function literal(constant: Constant): string {
  return constant.type === 'u32' ? `${constant.value}u` : floatLiteral(constant.value);
}

/** A float constant as C spells it: `0.00001f`, `2.0f`, `1e-7f`. */
export function floatLiteral(value: number): string {
  const text = String(value);
  return `${/[.e]/.test(text) ? text : `${text}.0`}f`;
}

/** The compile-time constants: the shared IR's, then the CUDA pass's. */
function constantsOf(kernel: CudaKernel): Constant[] {
  const u = (name: string, value: number): Constant => ({ name, value, type: 'u32' });
  const constants = [...kernel.constants];
  const tc = kernel.cuda.tensorCore;
  if (tc) {
    constants.push(
      u('TC_MIN_TOKENS', tc.minTokens), u('TC_BLOCK_ROWS', tc.blockRows), u('TC_BLOCK_COLUMNS', tc.blockColumns),
      u('TC_REDUCE_CHUNK', tc.reduceChunk),
      ...(kernel.role === 'forward' ? [u('TC_CHUNKS_PER_GROUP', tc.chunksPerGroup)] : []),
      u('TC_WARPS_ALONG_ROWS', tc.warpsAlongRows), u('TC_WARPS_ALONG_COLUMNS', tc.warpsAlongColumns),
      u('TC_FRAGMENTS_PER_WARP_ROW', tc.fragmentsPerWarpRow), u('TC_FRAGMENTS_PER_WARP_COLUMN', tc.fragmentsPerWarpColumn),
      u('TC_ACTIVATION_PAD', tc.activationPad), u('TC_ACCUMULATOR_PAD', tc.accumulatorPad), u('TC_THREADS', tc.threads),
    );
    if (tc.adapterChunks > 0) {
      constants.push(u('TC_ADAPTER_CHUNKS', tc.adapterChunks), u('TC_ACTIVATION_TOKENS', tc.adapterActivationTokens), u('TC_ACTIVATION_THREADS', tc.adapterActivationThreads));
    }
    if (tc.wgmma) {
      constants.push(
        u('WGMMA_M', tc.wgmma.shape[0]), u('WGMMA_N', tc.wgmma.shape[1]), u('WGMMA_K', tc.wgmma.shape[2]),
        u('WGMMA_LEADING_BYTE_OFFSET', tc.wgmma.leadingByteOffset), u('WGMMA_STRIDE_BYTE_OFFSET', tc.wgmma.strideByteOffset),
        u('WGMMA_WARPGROUPS', tc.wgmma.warpgroups), u('WGMMA_ACCUMULATOR_PAD', tc.wgmma.accumulatorPad),
      );
      if (tc.wgmma.activationStages > 1) {
        constants.push(
          u(kernel.role === 'forward' ? 'TC_INPUT_STAGES' : 'TC_OUTPUT_GRAD_STAGES', tc.wgmma.activationStages), u('TC_WEIGHT_STAGES', tc.wgmma.weightStages),
          u('TC_GRID_COLUMNS', tc.blockColumns), u('TC_MMA_SYNC_COLUMNS', tc.mmaSyncColumns),
        );
      }
    }
  }
  const ag = kernel.cuda.adapterGrad;
  if (ag) {
    constants.push(
      u('AG_THREADS', ag.threads), u('AG_ROWS', ag.blockRows), u('AG_CHUNK', ag.chunk), u('AG_PAD', ag.pad), u('AG_ACCUMULATOR_PAD', ag.accumulatorPad),
      u('AG_RANK_TILE', ag.rankTile), u('AG_GROUP_TILE', ag.groupTile),
      u('AG_WEIGHT_GRAD_BLOCKS', ag.weightGradColumnBlocks), u('AG_A_GRAD_BLOCKS', ag.adapterAGradColumnBlocks),
      u('AG_STAGING_FLOATS', ag.stagingBytes / 4), u('AG_SHARED_FLOATS', ag.sharedBytes / 4),
    );
  }
  const dc = kernel.cuda.decode;
  if (dc) {
    constants.push(u('DECODE_COLUMNS', dc.columnsPerBlock), u('DECODE_WARPS', dc.warps), u('DECODE_MIN_BLOCKS', dc.minBlocksPerMultiprocessor));
    if (dc.kind === 'mma') {
      constants.push(
        u('CODES_PER_WORD', dc.codesPerWord), u('WORDS_PER_GROUP', dc.wordsPerGroup),
        ...(dc.v9 ? [u('DECODE_UNIT_WORDS', dc.unitWords), u('DECODE_UNIT_CODES', dc.unitCodes)] : []),
        u('DECODE_SCRATCH_FLOATS', dc.scratchFloats), u('DECODE_RANK_PER_LANE', dc.rankPerLane),
      );
    } else if (dc.kind === 'wide') {
      constants.push(
        u('DECODE_COLUMN_THREADS', dc.columnThreads), u('DECODE_SLICES', dc.slices), u('DECODE_THREADS', dc.columnThreads * dc.slices),
        u('CODES_PER_WORD', dc.codesPerWord), u('WORDS_PER_GROUP', dc.wordsPerGroup), u('WORD_BATCH', dc.wordBatch), u('CODES_PER_STEP', Math.min(dc.codesPerWord, 8)),
        u('DECODE_SCRATCH_FLOATS', dc.scratchFloats), ...(dc.adapterPartialFloats > 0 ? [u('DECODE_ADAPTER_PARTIALS', dc.adapterPartialFloats)] : []),
      );
    } else {
      constants.push(u('DECODE_RANK_PER_LANE', dc.rankPerLane), u('DECODE_REDUCTION_WIDTH', dc.reductionWidth));
    }
  }
  return constants;
}

function pointerType(kernel: CudaKernel, bindingIndex: number): string {
  const b = kernel.bindings[bindingIndex]!;
  const type = C_TYPES[b.elementType as ScalarType];
  return b.access === 'read' ? `const ${type}*` : `${type}*`;
}

/** Every kernel of a file takes every binding, then the run-time scalars: one ABI per file. */
function parameterList(kernel: CudaKernel): string {
  const parameters = kernel.bindings
    .filter((b) => b.access !== 'uniform')
    .map((b) => `${pointerType(kernel, b.binding)} __restrict__ ${b.name}`);
  return [...parameters, 'unsigned tokens', 'float adapterScale'].join(',\n    ');
}

function argumentList(kernel: CudaKernel): string {
  const pointers = kernel.bindings
    .filter((b) => b.access !== 'uniform')
    .map((b) => `static_cast<${pointerType(kernel, b.binding)}>(bindings[${b.binding}])`);
  return [...pointers, 'tokens', 'adapterScale'].join(',\n        ');
}

/** ⌈count / per⌉ as a C expression of `tokens`. */
function gridExpression(dim: DispatchDim): string {
  const { tokens, constant } = dim.count;
  if (tokens === 0) return `${Math.ceil(constant / dim.per)}u`;
  const scaled = tokens === 1 ? 'tokens' : `${tokens}u * tokens`;
  const count = constant === 0 ? scaled : `${scaled} + ${constant}u`;
  return dim.per === 1 ? count : `(${count} + ${dim.per - 1}u) / ${dim.per}u`;
}

function conditionOf(launch: CudaLaunch, variants: readonly CudaLaunch[]): string {
  if (variants.length === 1) return 'true';
  const parts = [];
  if (launch.minTokens > 1) parts.push(`tokens >= ${launch.minTokens}u`);
  if (launch.maxTokens !== null) parts.push(`tokens <= ${launch.maxTokens}u`);
  return parts.join(' && ') || 'true';
}

function launchersOf(kernel: CudaKernel): object[] {
  const entries = [...new Set(kernel.cuda.launches.map((l) => l.entryPoint))];
  const decode = kernel.cuda.decode;
  return entries.map((entry) => {
    const variants = kernel.cuda.launches.filter((l) => l.entryPoint === entry);
    return {
      symbol: `${kernel.name}__${entry}__launch`,
      maxTokens: decode ? decode.maxTokens : 0,
      variants: variants.map((launch) => ({
        symbol: launch.symbol,
        condition: conditionOf(launch, variants),
        grid: launch.grid.map(gridExpression).join(', '),
        threads: launch.threads.join(', '),
        arguments: argumentList(kernel),
        prologue: launch.prologue
          ? { symbol: launch.prologue.symbol, grid: launch.prologue.grid.map(gridExpression).join(', '), threads: launch.prologue.threads.join(', ') }
          : null,
      })),
    };
  });
}

/** wgmma's inline-asm operands: `count` fp32 accumulators per thread, then the two descriptors. */
function wgmmaOperands(count: number, shape: readonly number[] | undefined): object {
  const indices = Array.from({ length: count }, (_, i) => i);
  return {
    wgmmaAccumulatorCount: count,
    wgmmaShape: shape ? `m${shape[0]}n${shape[1]}k${shape[2]}` : '',
    wgmmaRegisters: `{${indices.map((i) => `%${i}`).join(', ')}}`,
    wgmmaDescriptors: `%${count}, %${count + 1}`,
    wgmmaScaleOperand: `%${count + 2}`,
    wgmmaConstraints: indices.map((i) => `"+f"(d[${i}])`).join(', '),
  };
}

function contextOf(program: CudaProgram, kernel: CudaKernel): object {
  const config = configOfKernel(program as KernelProgram, kernel);
  const activation = kernel.dtypes.activation;
  const [toFloat, fromFloat] = CONVERSIONS[activation];
  const tc = kernel.cuda.tensorCore;
  const portable = kernel.cuda.launches.find((l) => !l.variant.endsWith('TensorCore'));
  const symbolOf = Object.fromEntries(kernel.cuda.launches.map((l) => [l.variant, l.symbol]));
  return {
    headerLines: headerLines(program, kernel, config, compileCommands(`${kernel.name}.cu`)),
    namespace: `qalc_${kernel.name}`,
    activationType: C_TYPES[activation],
    toFloat,
    fromFloat,
    constants: constantsOf(kernel).map((c) => ({ name: c.name, type: c.type === 'u32' ? 'uint32_t' : 'float', literal: literal(c) })),
    partAccessors: kernel.bindings.flatMap((b) =>
      b.parts.map((part) => ({ name: part.name, binding: b.name, offset: part.offset, doc: part.doc, shape: formatShape(part.shape) })),
    ),
    parameters: parameterList(kernel),
    launchers: launchersOf(kernel),
    symbolOf,
    portableSymbol: portable?.symbol ?? '',
    portableRange: tc ? `T < ${tc.minTokens}` : 'any T',
    tensorCore: tc !== null,
    includesWmma: tc !== null || kernel.cuda.adapterGrad !== null,
    adapterGradTensorCore: kernel.cuda.adapterGrad !== null,
    decodeWide: kernel.cuda.decode?.kind === 'wide',
    decodeMma: kernel.cuda.decode?.kind === 'mma',
    decodeV8: kernel.cuda.decode?.tokenTiles.some((t) => t.v8 === true) ?? false,
    // v9 (_decode-tensor-core-v9.cu.hbs): its own constants and body, so v7's and v8's text stays as measured.
    decodeV9: kernel.cuda.decode?.kind === 'mma' && kernel.cuda.decode.v9,
    // The mma decode's 16-bit pairs: OR a code pair into bias + q (exact), and two ones.
    decodeCodeMagic: activation === 'f16' ? '0x64006400u' : '0x43004300u',
    // 8-bit codes in bf16 are q - 128 (_decode-code-pairs.cu.hbs): 128 + q has 9 significant bits.
    decodeCodeBias: activation === 'f16' ? '1024.0f' : config.bits === 8 ? '-128.0f' : '128.0f',
    decodeOnes: activation === 'f16' ? '0x3C003C00u' : '0x3F803F80u',
    decodeVariants: kernel.cuda.decode?.kind === 'wide' || kernel.cuda.decode?.kind === 'mma'
      ? kernel.cuda.launches.map((l, index) => ({
          symbol: l.symbol, tokenTile: kernel.cuda.decode!.tokenTiles[index]!.maxTokens, minBlocks: kernel.cuda.decode!.tokenTiles[index]!.minBlocks,
          loadDepth: kernel.cuda.decode!.tokenTiles[index]!.loadDepth ?? 1, activationDepth: kernel.cuda.decode!.tokenTiles[index]!.activationDepth ?? 1,
          portableLoadDepth: kernel.cuda.decode!.tokenTiles[index]!.portableLoadDepth ?? 1,
          // sm_80's activation ring: 2, or 1 where the tile's own is (3-bit T = 16: ptxas spills 16 bytes there with 2).
          portableActivationDepth: Math.min(2, kernel.cuda.decode!.tokenTiles[index]!.activationDepth ?? 1), warps: kernel.cuda.decode!.tokenTiles[index]!.warps ?? kernel.cuda.decode!.warps,
          v8: kernel.cuda.decode!.tokenTiles[index]!.v8 ?? false, scaleVectors: kernel.cuda.decode!.tokenTiles[index]!.scaleVectors ?? false,
          range: `${l.minTokens} <= T <= ${l.maxTokens}`,
        }))
      : [],
    argumentNames: [...kernel.bindings.filter((b) => b.access !== 'uniform').map((b) => b.name), 'tokens', 'adapterScale'].join(', '),
    wgmma: tc?.wgmma != null,
    pipelined: (tc?.wgmma?.activationStages ?? 1) > 1,
    // wgmma's operand types are spelled as PTX types; 16-bit bit patterns for the packed stores.
    wgmmaType: activation === 'f16' ? 'f16' : 'bf16',
    activationBits: activation === 'f16' ? '__half_as_ushort' : '__bfloat16_as_ushort',
    // Each warpgroup (128 threads) holds its M x N fp32 accumulator.
    ...wgmmaOperands(tc?.wgmma ? (tc.wgmma.shape[0] * tc.wgmma.shape[1]) / 128 : 0, tc?.wgmma?.shape),
    tensorCoreSymbol: kernel.cuda.launches.find((l) => l.variant.endsWith('TensorCore'))?.symbol ?? '',
    adapterActivationsSymbol: kernel.cuda.launches.find((l) => l.prologue)?.prologue?.symbol ?? '',
    cpAsync: tc?.staging === 'cp.async',
    staging: tc?.staging ?? '',
    codesStraddleWords: kernel.weightLayout.codesStraddleWords,
    // 8 consecutive codes from group-aligned rows lie in one word (two for 8 bits).
    eightCodesAWord: 32 % config.bits === 0 && config.group % 8 === 0,
    dequantizes: kernel.role === 'backward_data' || kernel.role === 'dequantize',
    adapter: kernel.epilogue.kind === 'adapter',
    dropout: kernel.epilogue.kind === 'adapter' ? kernel.epilogue.dropout : config.adapter?.dropout ?? false,
    unpool: kernel.epilogue.kind === 'unpool',
    symmetric: config.symmetric,
  };
}

export function emitCudaKernel(program: CudaProgram, kernel: CudaKernel): EmittedCudaKernel {
  if (program.target !== 'cuda') throw new Error(`the CUDA backend was handed a program lowered for ${program.target}`);
  const template = cudaTemplates('').get(kernel.role);
  if (!template) throw new Error(`no CUDA template for role ${kernel.role}`);
  const source = template(contextOf(program, kernel)).replace(/\n{3,}/g, '\n\n');
  return {
    kernel,
    fileName: `${kernel.name}.cu`,
    source,
    kernelSymbols: kernel.cuda.launches.flatMap((l) => (l.prologue ? [l.prologue.symbol, l.symbol] : [l.symbol])),
    launcherSymbols: [...new Set(kernel.cuda.launches.map((l) => l.entryPoint))].map((e) => `${kernel.name}__${e}__launch`),
  };
}

/** Every kernel of a program lowered for CUDA (its CUDA pass included), in IR order. */
export function emitCuda(program: CudaProgram): EmittedCudaKernel[] {
  return program.kernels.map((kernel) => emitCudaKernel(program, kernel));
}
