// The CUDA pass: decisions only the CUDA target makes, taken after the shared passes.
//
// The shared IR gives every kernel a portable tiling (16×16 tiles, one thread per element),
// which the CUDA backend keeps as its path for small batches. This pass adds, per kernel:
//   - tensor-core tiles for the matmuls once T ≥ 64 (forward, backward_data): blocks of 64 or
//     128 tokens × 64 columns of warps with 2×2 fragments of 16×16×16 through nvcuda::wmma,
//     which lowers to mma.sync; fp16/bf16 operands, fp32 accumulators; the activation tile
//     staged with cp.async when every 16-byte segment is either wholly inside the reduction
//     range or wholly outside it;
//   - on sm_90a, the tensor-core variants (forward and backward_data) through wgmma instead
//     (`wgmma` below): a warpgroup per 64 tokens issuing wgmma.mma_async m64nNk16, both
//     operands read by the tensor cores from shared memory in the K-major, unswizzled
//     core-matrix layout (the descriptor offsets are decided here), fp32 accumulators in
//     registers; where the activation tile is staged by cp.async and codes are read a word at a
//     time the body is pipelined (3 + 2 shared stages) over blocks of 128 × 128, and the
//     mma.sync body runs its 64-column tile once per half of the block. The same
//     extern "C" kernel carries both bodies and the preprocessor picks one per target: the
//     sm_80 SASS and the compute_90 PTX (JIT for later GPUs) keep mma.sync, so block shape,
//     grid and launcher are the same on every arch;
//   - the decode (T ≤ 16): `wide` (16-byte loads of 4 columns' packed words, K split across
//     a block's threads) where the layer allows it, else the v0 split-reduction strip of 32
//     columns (see CudaDecodeTiling); its __launch_bounds__ names a minimum of blocks per SM,
//     so ptxas has an explicit register budget of 128 a thread;
//   - adapter_grad (16-bit activations) on tensor cores: its four small products as two GEMM
//     tile shapes (see CudaAdapterGradTiling), one launch an entry point as before;
//   - the launch list: for every entry point the extern "C" kernels that implement it, their
//     block shape, grid and the token range each accepts.
// It is a pure function from a lowered program to a CUDA program (the same kernels plus a
// `cuda` record each); the backend prints it and makes no decision of its own.
import type { DispatchDim, KernelProgram, LoweredKernel, LoweredProgram, ScalarType } from '../kernel-ir.ts';
import { fixed, ONE, perToken } from '../size-expr.ts';
import { configOfKernel } from './share-layers.ts';
import { mmaDecodeTiling } from './decode-mma-tiling.ts';

/** Tensor-core tiling of a matmul role (forward, backward_data), used when T ≥ minTokens. */
export interface CudaTensorCoreTiling {
  readonly minTokens: number;
  /** Output block: tokens × (outputs for forward, inputs for backward_data). */
  readonly blockRows: number;
  readonly blockColumns: number;
  /** Columns of the mma.sync body's tile: blockColumns, or a part of it the body runs once per part (pipelined wgmma blocks of 128). */
  readonly mmaSyncColumns: number;
  /** Reduction chunk staged through shared memory; a multiple of fragmentK. */
  readonly reduceChunk: number;
  /** Forward: chunks per quantization group (chunks never cross a group, the tail is zero). */
  readonly chunksPerGroup: number;
  readonly warpsAlongRows: number;
  readonly warpsAlongColumns: number;
  /** Fragments per warp along rows and columns (warp tile = fragments × 16). */
  readonly fragmentsPerWarpRow: number;
  readonly fragmentsPerWarpColumn: number;
  readonly fragment: readonly [m: number, n: number, k: number];
  readonly instruction: 'mma.sync via nvcuda::wmma';
  /** How the activation tile (x or dy) reaches shared memory. */
  readonly staging: 'cp.async' | 'loads';
  /** Padding (elements) added to shared-memory rows against bank conflicts. */
  readonly activationPad: number;
  readonly accumulatorPad: number;
  readonly threads: number;
  /** Shared memory of the mma.sync body. */
  readonly sharedBytes: number;
  /** The sm_90a body, or null where every arch runs mma.sync. */
  readonly wgmma: CudaWarpgroupMma | null;
  /**
   * Forward with an adapter: chunks of the rank-RANK extension [x | v]·[Ŵ ; σB] after the
   * weight's groups (0 without an adapter), and the prologue kernel that computes u and v once
   * per token, `adapterActivationTokens` tokens a block of `adapterActivationThreads`.
   */
  readonly adapterChunks: number;
  readonly adapterActivationTokens: number;
  readonly adapterActivationThreads: number;
}

/**
 * sm_90a's tensor-core body: one warpgroup (the block's 4 warps) issues wgmma.mma_async
 * m64n64k16 per 16 reduction elements, A = the activation tile (x for the forward, dy for
 * backward_data) and B = the dequantized weight tile (W-hat, or W-hat^T for backward_data),
 * both from shared memory through matrix descriptors, D (fp32) in registers.
 * Both tiles are stored K-major in 8 × 8 core matrices (8 rows of 16 bytes, 128 contiguous
 * bytes), no swizzle: core matrix (rowBlock, kBlock) at byte (rowBlock · reduceChunk/8 + kBlock)
 * · 128. The descriptor's leading-dimension byte offset is the distance between core matrices
 * adjacent along K, its stride-dimension byte offset the distance between those adjacent along
 * M (tokens) or N (outputs for the forward, inputs for backward_data). backward_data's B is
 * W-hat^T (K = outputs, N = inputs): it is dequantized straight into that K-major layout
 * ([input][output] core matrices), so both roles use the transpose bits 0 and one descriptor.
 */
export interface CudaWarpgroupMma {
  readonly arch: 'sm_90a';
  readonly instruction: 'wgmma.mma_async';
  readonly shape: readonly [m: number, n: number, k: number];
  readonly layout: 'K-major core matrices, no swizzle';
  readonly leadingByteOffset: number;
  readonly strideByteOffset: number;
  /** Warpgroups of the block, each issuing the shape for its own 64 rows. */
  readonly warpgroups: number;
  readonly accumulatorPad: number;
  /**
   * Shared-memory stages of the activation (x, dy) and weight tiles: 1 and 1 is the
   * single-stage loop; with cp.async staging and codes read a word at a time (forward: 8 inputs
   * of a column from one word; backward_data: word pairs of adjacent outputs) they are 3 and 2
   * (v4): chunk c's wgmma in flight while chunk c + 1's weight tile is dequantized and chunk
   * c + 2's activation copy and packed words are on their way; 128-column blocks, y (dx) stored
   * from the accumulator registers, with no shared accumulator tile.
   */
  readonly activationStages: number;
  readonly weightStages: number;
  readonly sharedBytes: number;
}

/** Options of the CUDA pass. */
export interface CudaPassOptions {
  /** wgmma for the tensor-core variants (forward, backward_data) on sm_90a (default true); false keeps mma.sync everywhere. */
  readonly wgmma?: boolean;
  /**
   * The tensor-core decode's body (decode-mma-tiling.ts): 'v7' (default) or a v8 variant
   * (compile-time k-block counts, no per-load clamps), each a benchmarked candidate.
   */
  readonly decodeVariant?: DecodeVariant;
}

/**
 * v7: the shipped body. v8a: v8 with the scales exchanged by shuffles (and the registers of a
 * grid whose blocks are all resident); v8b: the scales loaded as float4 a lane; v8c: v8b with
 * those registers and deeper rings; v8d: v8c with the tiles above 8 tokens in blocks of as many
 * warps as the smaller tiles'; v8e: v8c with the activations as far ahead as the weight
 * (decode-mma-tiling.ts).
 */
export type DecodeVariant = 'v7' | 'v8a' | 'v8b' | 'v8c' | 'v8d' | 'v8e' | 'v9';
// v9: v8c's tiles on the generalised body (_decode-tensor-core-v9.cu.hbs: units of 1 or 3 words,
// 2/3/4/8-bit codes, groups of any whole number of k-blocks or subgroups of one) for every mma
// layer, including those v7's and v8's bodies do not take (3- and 8-bit codes, groups of 4+
// k-blocks, groups smaller than a k-block), which otherwise run `wide` / `split`.
/** The decode body a program gets unless the caller names one: v8c, measured (LOG.md, v8) 1.3× v7 at T = 1 and 2–2.5× at T = 16. */
const DECODE_VARIANT_DEFAULT: DecodeVariant = 'v8c';
/**
 * Whether, with no variant named, the layers v8c's body does not take run v9 instead of `wide` /
 * `split` (W3 g64, W2 g32, W4 g128, W8 g128 at the 7B shapes; `qalc inspect --stage ir`: their
 * decode's kind is mma). On since the H200 run of LOG.md's v9 entry (bench-decode-b867b95.md: 880
 * outputs against float64, 0 failing; faster than wide / split in every case, e.g. W3 g64 at T = 1
 * 346.8 → 17.8 µs, W4 g128 at T = 8 161.5 → 14.5). v8c's layers keep v8c either way (v9's copy
 * of them measured the same).
 */
export const DECODE_V9_WHERE_V8_DOES_NOT_FIT = true;

/**
 * Decode (T ≤ maxTokens), one of three shapes:
 *   - `mma` (v7, decode-mma-tiling.ts): tensor cores, the weight as the M side of mma.sync
 *     m16n8k16 and the tokens (padded to 8) as N, codes dequantized in registers; 4- and 2-bit
 *     codes in groups of whole 4-word k-blocks, 16-bit activations. Preferred where it applies;
 *   - `wide` (v1): each thread owns 4 adjacent output columns and reads them as one 16-byte
 *     load per packed word row (GPTQ v1 keeps a word row's columns contiguous, so no re-layout
 *     is needed), with the group's scales and zeros as two more 16-byte loads; a block is
 *     `columnThreads` × `slices` threads, the slices splitting the groups round-robin, so every
 *     word is read once and the grid is N / (4 · columnThreads) blocks: 4 column threads (16
 *     columns a block) where 8 would leave fewer than two blocks per SM. Codes become floats by
 *     the 2^23 magic number (one OR and one add, no I2F). The slices' sums meet by warp
 *     shuffles, then through shared memory in warp order; u and v = drop(u)·A (tiny at T ≤ 16)
 *     are computed by every block from x and A, and y += σ·v·B in the epilogue. Needs 16-bit
 *     activations, 32 % bits = 0, group and K multiples of the codes a word holds, N % 4 = 0.
 *   - `split` (v0, every other layer): one warp-wide strip of 32 columns a block, one 32-bit
 *     code load per input row, the groups dealt round-robin to `warps` warps.
 */
export interface CudaDecodeTiling {
  readonly kind: 'mma' | 'wide' | 'split';
  readonly maxTokens: number;
  readonly columnsPerBlock: number;
  readonly warps: number;
  /** wide: threads along the columns (4 columns each) and along K (groups dealt round-robin). */
  readonly columnThreads: number;
  readonly slices: number;
  /** wide: codes in one packed word, the word rows of one group, and those loaded together (a divisor of wordsPerGroup, at most 4). */
  readonly codesPerWord: number;
  readonly wordsPerGroup: number;
  readonly wordBatch: number;
  /**
   * wide: one extern "C" kernel per token tile, the launcher choosing by T; a tile's token loops
   * are unrolled without a branch (rows past T repeat row T − 1 and are not stored), and a
   * smaller tile needs fewer registers, so more blocks fit an SM (`minBlocks`).
   */
  readonly tokenTiles: readonly {
    readonly maxTokens: number; readonly minBlocks: number;
    /** mma: k-blocks of loads in flight a warp, and the warps of the tile's blocks (`warps` otherwise). */
    readonly loadDepth?: number; readonly activationDepth?: number; readonly warps?: number;
    /** mma: the weight's ring on sm_80 (and in the compute_90 PTX). */
    readonly portableLoadDepth?: number;
    /** mma: the v8 body (compile-time trip counts), and whether a lane loads its quad's 4 scales and zeros as float4s. */
    readonly v8?: boolean; readonly scaleVectors?: boolean;
  }[];
  /** mma: the v9 body on every target (_decode-tensor-core-v9.cu.hbs; decode-mma-tiling.ts, widerUnitTile). */
  readonly v9: boolean;
  /** mma: a lane's unit of codes (word rows and codes), and the subgroups of a k-block (decode-mma-tiling.ts, DecodeUnits); 0 otherwise. */
  readonly unitWords: number;
  readonly unitCodes: number;
  readonly subgroups: number;
  /** wide: floats of the shared scratch (u, then the warps' partial sums) and of v's partial sums. */
  readonly scratchFloats: number;
  readonly adapterPartialFloats: number;
  /** Rank entries each lane keeps in registers (⌈rank / 32⌉; split). */
  readonly rankPerLane: number;
  /** Width of the cross-warp reduction buffer: max(32, rank) (split). */
  readonly reductionWidth: number;
  /**
   * __launch_bounds__'s minBlocksPerMultiprocessor: REGISTER_FILE / (threads × 128), so each
   * thread may use up to 128 registers. With the thread count alone, ptxas chooses a budget
   * of its own by an occupancy heuristic, and may trade a few spills for one more block per
   * SM: rank 64 at T ≤ 16 without dropout needs ~88 registers, and ptxas capped it at 80
   * (three 256-thread blocks) with 12–24 bytes of spills. A kernel that spills is refused.
   */
  readonly minBlocksPerMultiprocessor: number;
  readonly sharedBytes: number;
}

/** One extern "C" kernel: which IR entry point it implements and how it is launched. */
export interface CudaLaunch {
  /** The IR entry point (`forward`, `adapterOutputGrads`, …). */
  readonly entryPoint: string;
  /** The extern "C" symbol: `<kernel>__<variant>`, numbers and enums only. */
  readonly symbol: string;
  readonly variant: string;
  readonly threads: readonly [number, number, number];
  readonly grid: readonly [DispatchDim, DispatchDim, DispatchDim];
  /** Token range this variant accepts; the launcher picks the variant by T. */
  readonly minTokens: number;
  readonly maxTokens: number | null;
  readonly sharedBytes: number;
  /** A kernel the launcher runs first, on the same stream (the forward's u/v prologue), or null. */
  readonly prologue: { readonly symbol: string; readonly threads: readonly [number, number, number]; readonly grid: readonly [DispatchDim, DispatchDim, DispatchDim] } | null;
}

/**
 * adapter_grad on tensor cores (16-bit activations; v4): the four small products are two
 * block-tile GEMM shapes through nvcuda::wmma (mma.sync m16n8k16 on sm_80 and sm_90a alike):
 *   - "rows × weightsᵀ": out[m][n] = Σ_k X[m][k]·Y[n][k] with X an activation [T][K] and Y an
 *     fp32 adapter matrix [n][K]: dv = σ·dy·Bᵀ (K = N) and du = drop(dv·Aᵀ) (K = rank);
 *   - "columnsᵀ × columns": out[m][n] = Σ_t P[t][m]·Q[t][n] over the tokens: dBᵀ = dyᵀ·v (stored
 *     transposed) and dA = drop(u)ᵀ·dv.
 * A block is `threads` (4 warps), its tile `blockRows` rows (16 a warp) × a column tile of
 * `rankTile` (dv, dB, dA) or `groupTile` (du) columns, the reduction staged through shared memory
 * `chunk` deep, loaded into registers one chunk ahead. Each entry point stays one launch: its
 * first `blocks…` blocks along x take one product, the rest the other, so the reductions over N
 * (dv) and over T (dB) run side by side. Every sum runs in a fixed order: bitwise reproducible.
 */
export interface CudaAdapterGradTiling {
  readonly instruction: 'mma.sync via nvcuda::wmma';
  readonly threads: number;
  readonly blockRows: number;
  readonly chunk: number;
  readonly pad: number;
  readonly accumulatorPad: number;
  readonly rankTile: number;
  readonly groupTile: number;
  /** adapterOutputGrads: blocks along x for dB (column tiles of N), before the token tiles of dv. */
  readonly weightGradColumnBlocks: number;
  /** adapterInputGrads: blocks along x for dA (x·y ≥ its tiles), before the token tiles of du. */
  readonly adapterAGradColumnBlocks: number;
  /** Shared memory: the staging tiles (the larger shape's), then the fp32 sums. */
  readonly stagingBytes: number;
  readonly sharedBytes: number;
}

export interface CudaDecisions {
  readonly tensorCore: CudaTensorCoreTiling | null;
  readonly decode: CudaDecodeTiling | null;
  readonly adapterGrad: CudaAdapterGradTiling | null;
  /** Entry points in IR order, each with its variants (smallest minTokens first). */
  readonly launches: readonly CudaLaunch[];
}

export type CudaKernel = LoweredKernel & { readonly cuda: CudaDecisions };
export type CudaProgram = KernelProgram<CudaKernel>;

const TENSOR_CORE_MIN_TOKENS = 64;
/** The forward's u/v prologue: tokens a block (A is read once per block from L2) and threads. */
const ADAPTER_ACTIVATION_TOKENS = 8;
const ADAPTER_ACTIVATION_THREADS = 256;
/** The tensor-core variants (forward, backward_data) use wgmma on sm_90a unless the caller turns it off. */
const WGMMA_DEFAULT = true;
/** One core matrix: 8 rows of 16 bytes. */
const CORE_MATRIX_BYTES = 128;
const FRAGMENT = 16;
const WARP = 32;
const DECODE_COLUMNS = 32;
const DECODE_MAX_WARPS = 8;
/** 32-bit registers per SM (sm_80, sm_90a) and the per-thread budget the decode is given. */
const REGISTER_FILE = 65536;
const DECODE_REGISTERS_PER_THREAD = 128;
/** Static shared memory a kernel may declare without opting in to more. */
const STATIC_SHARED_LIMIT = 48 * 1024;

const bytesOf = (type: ScalarType): number => (type === 'f16' || type === 'bf16' ? 2 : 4);

/** The wgmma body's accumulator rows are padded by this many floats (the mma.sync body's pad may differ). */
const WGMMA_ACCUMULATOR_PAD = 4;

function warpgroupMma(rows: number, columns: number, reduceChunk: number, elementBytes: number, pipelined: boolean): CudaWarpgroupMma | null {
  // One warpgroup per 64 tokens of the block (one or two): M = 64, N = the block's columns (a
  // multiple of 8 up to 256), K = 16 per instruction; the chunk holds whole core matrices along K.
  if ((rows !== 64 && rows !== 128) || columns % 8 !== 0 || columns > 256 || reduceChunk % 16 !== 0 || elementBytes !== 2) return null;
  const activationStages = pipelined ? 3 : 1, weightStages = pipelined ? 2 : 1;
  const sharedBytes =
    activationStages * rows * reduceChunk * elementBytes + // x (dy) tiles, core matrices, no padding
    weightStages * columns * reduceChunk * elementBytes + // W-hat (W-hat^T) tiles, K-major core matrices
    // accumulators, for the epilogue (the pipelined bodies store from registers)
    (pipelined ? 0 : rows * (columns + WGMMA_ACCUMULATOR_PAD) * 4);
  if (sharedBytes > STATIC_SHARED_LIMIT) return null;
  return {
    arch: 'sm_90a', instruction: 'wgmma.mma_async', shape: [64, columns, FRAGMENT], warpgroups: rows / 64,
    layout: 'K-major core matrices, no swizzle',
    leadingByteOffset: CORE_MATRIX_BYTES,
    strideByteOffset: (reduceChunk / 8) * CORE_MATRIX_BYTES,
    accumulatorPad: WGMMA_ACCUMULATOR_PAD,
    activationStages, weightStages,
    sharedBytes,
  };
}

function tensorCoreTiling(program: KernelProgram, kernel: LoweredKernel, options: CudaPassOptions): CudaTensorCoreTiling | null {
  if (kernel.role !== 'forward' && kernel.role !== 'backward_data') return null;
  const activation = kernel.dtypes.activation;
  // Tensor cores take 16-bit operands here; an f32 program keeps the portable tiles.
  if (activation !== 'f16' && activation !== 'bf16') return null;
  const c = configOfKernel(program, kernel);
  const rank = c.adapter?.rank ?? 0;
  const forward = kernel.role === 'forward';
  // Forward reduces over inputs in chunks that never cross a group; a group that is a
  // multiple of 32 takes 32-deep chunks (two mma steps a barrier), others 16.
  const reduceChunk = forward ? (c.group % 32 === 0 ? 32 : FRAGMENT) : 32;
  const chunksPerGroup = forward ? Math.ceil(c.group / reduceChunk) : 0;
  // The forward's blocks are 128 tokens (two warpgroups on sm_90a, 8 warps of mma.sync), so each
  // dequantized weight tile serves twice the rows of a 64-token block.
  const mmaSyncColumns = 64, activationPad = 8;
  // 16-byte segments (8 halves) are whole when both the row length and the chunk starts are
  // multiples of 8: K and g for the forward (chunk starts are group starts plus multiples of
  // the chunk), N for backward_data.
  const segmentsWhole = forward ? c.inFeatures % 8 === 0 && c.group % 8 === 0 : c.outFeatures % 8 === 0;
  // backward_data's W-hat^T from the packed words of output pairs: 8 inputs of a group in one
  // word (two for 8 bits), pairs of words 8-byte aligned (N even).
  const eightCodesAWord = 32 % c.bits === 0 && c.group % 8 === 0;
  const wordPairs = eightCodesAWord && c.outFeatures % 2 === 0;
  const a = bytesOf(activation);
  // The pipelined wgmma body (see CudaWarpgroupMma) takes blocks of 128 columns: each x (dy) tile
  // then serves twice the weight columns, halving the activation reads through L2 (which bounded
  // the 64-column pipelined blocks: L2 82 % busy, DRAM 4 %). backward_data's pipelined blocks are
  // 128 tokens too (two warpgroups sharing one W-hat^T tile: half the dequantization a FLOP).
  const pipelined = (options.wgmma ?? WGMMA_DEFAULT) && a === 2 && segmentsWhole && (forward ? eightCodesAWord : wordPairs);
  const columns = pipelined ? 2 * mmaSyncColumns : mmaSyncColumns;
  // Blocks of 128 tokens leave their mma.sync body's accumulator rows unpadded so the block stays
  // within 48 KB of static shared memory.
  const rows = forward || pipelined ? 128 : 64, accumulatorPad = rows === 128 ? 0 : 4;
  const warpsAlongRows = rows / 32;
  const sharedBytes =
    rows * (reduceChunk + activationPad) * a + // activation tile
    reduceChunk * (mmaSyncColumns + activationPad) * a + // dequantized weight tile
    rows * (mmaSyncColumns + accumulatorPad) * 4; // accumulators, for the epilogue (v comes from the forward's prologue kernel)
  if (sharedBytes > STATIC_SHARED_LIMIT) return null;
  return {
    minTokens: TENSOR_CORE_MIN_TOKENS,
    blockRows: rows, blockColumns: columns, mmaSyncColumns, reduceChunk, chunksPerGroup,
    warpsAlongRows, warpsAlongColumns: 2, fragmentsPerWarpRow: 2, fragmentsPerWarpColumn: 2,
    fragment: [FRAGMENT, FRAGMENT, FRAGMENT],
    instruction: 'mma.sync via nvcuda::wmma',
    staging: segmentsWhole ? 'cp.async' : 'loads',
    activationPad, accumulatorPad,
    threads: warpsAlongRows * 2 * WARP,
    sharedBytes,
    wgmma: options.wgmma ?? WGMMA_DEFAULT ? warpgroupMma(rows, columns, reduceChunk, a, pipelined) : null,
    adapterChunks: forward ? Math.ceil(rank / reduceChunk) : 0,
    adapterActivationTokens: ADAPTER_ACTIVATION_TOKENS,
    adapterActivationThreads: ADAPTER_ACTIVATION_THREADS,
  };
}

const ADAPTER_GRAD_THREADS = 128;
const ADAPTER_GRAD_ROWS = 64;
const ADAPTER_GRAD_CHUNK = 64;
/** Column tiles of 32: rank 64 gives two tiles, so dv's token tiles fill twice the SMs. */
const ADAPTER_GRAD_MAX_COLUMN_TILE = 32;

function adapterGradTiling(program: KernelProgram, kernel: LoweredKernel): CudaAdapterGradTiling | null {
  if (kernel.role !== 'adapter_grad') return null;
  const activation = kernel.dtypes.activation;
  if (activation !== 'f16' && activation !== 'bf16') return null;
  const c = configOfKernel(program, kernel);
  const rank = c.adapter!.rank;
  const tileOf = (n: number) => Math.min(ADAPTER_GRAD_MAX_COLUMN_TILE, Math.ceil(n / FRAGMENT) * FRAGMENT);
  const rankTile = tileOf(rank), groupTile = tileOf(c.groups);
  const pad = 8, accumulatorPad = 4, a = bytesOf(activation);
  const rows = ADAPTER_GRAD_ROWS, chunk = ADAPTER_GRAD_CHUNK;
  const widest = Math.max(rankTile, groupTile);
  // Both shapes' staging tiles, the larger of the two, then the accumulators.
  const rowsTimesWeights = (rows + widest) * (chunk + pad) * a;
  const columnsTimesColumns = chunk * (rows + pad) * a + chunk * (widest + pad) * a;
  const stagingBytes = Math.max(rowsTimesWeights, columnsTimesColumns);
  const sharedBytes = stagingBytes + rows * (widest + accumulatorPad) * 4;
  if (sharedBytes > STATIC_SHARED_LIMIT) return null;
  const rankTiles = Math.ceil(rank / rankTile), groupTiles = Math.ceil(c.groups / groupTile);
  return {
    instruction: 'mma.sync via nvcuda::wmma', threads: ADAPTER_GRAD_THREADS, blockRows: rows, chunk, pad, accumulatorPad,
    rankTile, groupTile,
    weightGradColumnBlocks: Math.ceil(c.outFeatures / rows),
    adapterAGradColumnBlocks: Math.ceil((Math.ceil(c.groups / rows) * rankTiles) / groupTiles),
    stagingBytes, sharedBytes,
  };
}

/** Multiprocessors the decode grid is sized for (H200; an A100 has 108). */
const DECODE_TARGET_SMS = 132;
const DECODE_WIDE_THREADS = 256;

function wideDecodeTiling(c: ReturnType<typeof configOfKernel>, activation: ScalarType, maxTokens: number): CudaDecodeTiling | null {
  const rank = c.adapter?.rank ?? 0;
  const codesPerWord = 32 / c.bits;
  if (bytesOf(activation) !== 2 || 32 % c.bits !== 0 || c.group % codesPerWord !== 0 || c.inFeatures % codesPerWord !== 0 || c.outFeatures % 4 !== 0) return null;
  const columnThreads = Math.ceil(c.outFeatures / 32) >= 2 * DECODE_TARGET_SMS ? 8 : 4;
  const columnsPerBlock = 4 * columnThreads;
  const warps = DECODE_WIDE_THREADS / WARP;
  const scratchFloats = Math.max(rank > 0 ? maxTokens * c.groups : 0, warps * maxTokens * columnsPerBlock);
  const adapterPartialFloats = rank > 0 ? Math.max(DECODE_WIDE_THREADS, maxTokens * rank) : 0;
  const sharedBytes = 4 * (scratchFloats + adapterPartialFloats + maxTokens * rank);
  if (sharedBytes > STATIC_SHARED_LIMIT) return null;
  const wordsPerGroup = c.group / codesPerWord;
  const wordBatch = [4, 2, 1].find((b) => wordsPerGroup % b === 0)!;
  // Registers a thread may use per tile: 85 (3 blocks an SM) for one token, 128 (2) up to 4,
  // 255 (1) above: 16 tokens × 4 columns of sums and their activations spill at 128.
  const tokenTiles = [{ maxTokens: 1, minBlocks: 3 }, { maxTokens: 4, minBlocks: 2 }, { maxTokens, minBlocks: 1 }].filter((t) => t.maxTokens <= maxTokens);
  return {
    kind: 'wide', maxTokens, columnsPerBlock, warps, columnThreads, slices: DECODE_WIDE_THREADS / columnThreads,
    codesPerWord, wordsPerGroup, wordBatch, tokenTiles, scratchFloats, adapterPartialFloats,
    v9: false, unitWords: 0, unitCodes: 0, subgroups: 0,
    rankPerLane: 0, reductionWidth: 0,
    minBlocksPerMultiprocessor: Math.floor(REGISTER_FILE / (DECODE_WIDE_THREADS * DECODE_REGISTERS_PER_THREAD)), sharedBytes,
  };
}

function decodeTiling(program: KernelProgram, kernel: LoweredKernel, options: CudaPassOptions): CudaDecodeTiling | null {
  if (kernel.role !== 'decode') return null;
  const c = configOfKernel(program, kernel);
  const rank = c.adapter?.rank ?? 0;
  const maxTokens = kernel.tiling.maxTokens;
  const variant = options.decodeVariant ?? DECODE_VARIANT_DEFAULT;
  const widerUnits = options.decodeVariant === undefined ? DECODE_V9_WHERE_V8_DOES_NOT_FIT : options.decodeVariant === 'v9';
  const mma = mmaDecodeTiling(c, kernel.dtypes.activation, maxTokens, DECODE_TARGET_SMS, variant, widerUnits);
  if (mma) return mma;
  const wide = wideDecodeTiling(c, kernel.dtypes.activation, maxTokens);
  if (wide) return wide;
  const reductionWidth = Math.max(DECODE_COLUMNS, rank);
  const bytesFor = (warps: number) => 4 * (warps * maxTokens * reductionWidth + maxTokens * rank);
  let warps = Math.min(DECODE_MAX_WARPS, c.groups);
  while (warps > 1 && bytesFor(warps) > STATIC_SHARED_LIMIT) warps -= 1;
  if (bytesFor(warps) > STATIC_SHARED_LIMIT) throw new Error(`${kernel.name}: rank ${rank} needs more shared memory than a CUDA block declares statically`);
  const minBlocksPerMultiprocessor = Math.max(1, Math.floor(REGISTER_FILE / (DECODE_COLUMNS * warps * DECODE_REGISTERS_PER_THREAD)));
  return {
    kind: 'split', maxTokens, columnsPerBlock: DECODE_COLUMNS, warps, columnThreads: DECODE_COLUMNS, slices: warps,
    codesPerWord: 0, wordsPerGroup: 0, wordBatch: 0, tokenTiles: [], scratchFloats: 0, adapterPartialFloats: 0,
    v9: false, unitWords: 0, unitCodes: 0, subgroups: 0,
    rankPerLane: Math.ceil(rank / WARP), reductionWidth,
    minBlocksPerMultiprocessor, sharedBytes: bytesFor(warps),
  };
}

function launchesOf(kernel: LoweredKernel, tensorCore: CudaTensorCoreTiling | null, decode: CudaDecodeTiling | null,
  adapterGrad: CudaAdapterGradTiling | null, c: { outFeatures: number; inFeatures: number; groups: number; adapter: { rank: number } | null }): CudaLaunch[] {
  const symbol = (variant: string) => `${kernel.name}__${variant}`;
  return kernel.entryPoints.flatMap((entry): CudaLaunch[] => {
    if (adapterGrad) {
      // x: the constant-count product's blocks first, then ⌈T / blockRows⌉ token tiles.
      const rows = adapterGrad.blockRows;
      const outputs = entry.name === 'adapterOutputGrads';
      const leading = outputs ? adapterGrad.weightGradColumnBlocks : adapterGrad.adapterAGradColumnBlocks;
      const y = outputs ? { count: fixed(c.adapter!.rank), per: adapterGrad.rankTile } : { count: fixed(c.groups), per: adapterGrad.groupTile };
      return [{
        entryPoint: entry.name, symbol: symbol(`${entry.name}TensorCore`), variant: `${entry.name}TensorCore`,
        threads: [adapterGrad.threads, 1, 1], grid: [{ count: perToken(1, leading * rows), per: rows }, y, ONE],
        minTokens: 1, maxTokens: null, sharedBytes: adapterGrad.sharedBytes, prologue: null,
      }];
    }
    if (decode) {
      const launch = {
        entryPoint: entry.name, threads: [decode.columnThreads, decode.slices, 1] as const,
        grid: [{ count: fixed(c.outFeatures), per: decode.columnsPerBlock }, ONE, ONE] as const, sharedBytes: decode.sharedBytes,
      };
      if (decode.kind === 'split') return [{ ...launch, symbol: symbol(entry.name), variant: entry.name, minTokens: 1, maxTokens: decode.maxTokens, prologue: null }];
      return decode.tokenTiles.map((tile, index) => ({
        ...launch, threads: [decode.columnThreads, tile.warps ?? decode.slices, 1] as const, symbol: symbol(`${entry.name}T${tile.maxTokens}`), variant: `${entry.name}T${tile.maxTokens}`, prologue: null,
        minTokens: index === 0 ? 1 : decode.tokenTiles[index - 1]!.maxTokens + 1, maxTokens: tile.maxTokens,
      }));
    }
    const portable: CudaLaunch = {
      entryPoint: entry.name, symbol: symbol(entry.name), variant: entry.name,
      threads: kernel.tiling.workgroupSize, grid: entry.dispatch,
      minTokens: kernel.shapeClass === 'tiled' || kernel.shapeClass === 'adapter' ? 1 : 0,
      maxTokens: tensorCore ? tensorCore.minTokens - 1 : null,
      sharedBytes: kernel.tiling.workgroupBytes, prologue: null,
    };
    if (!tensorCore) return [portable];
    const columns = kernel.role === 'forward' ? c.outFeatures : c.inFeatures;
    return [portable, {
      entryPoint: entry.name, symbol: symbol(`${entry.name}TensorCore`), variant: `${entry.name}TensorCore`,
      threads: [tensorCore.threads, 1, 1],
      grid: [{ count: fixed(columns), per: tensorCore.blockColumns }, { count: perToken(1), per: tensorCore.blockRows }, ONE],
      minTokens: tensorCore.minTokens, maxTokens: null, sharedBytes: Math.max(tensorCore.sharedBytes, tensorCore.wgmma?.sharedBytes ?? 0),
      prologue: tensorCore.adapterChunks > 0
        ? {
            symbol: symbol('adapterActivations'), threads: [tensorCore.adapterActivationThreads, 1, 1],
            grid: [{ count: perToken(1), per: tensorCore.adapterActivationTokens }, ONE, ONE],
          }
        : null,
    }];
  });
}

/** The CUDA pass: see the top of this file. */
export function chooseCudaKernels(program: LoweredProgram, options: CudaPassOptions = {}): CudaProgram {
  if (program.target !== 'cuda') throw new Error(`chooseCudaKernels was handed a program lowered for ${program.target}`);
  return {
    ...program,
    kernels: program.kernels.map((kernel) => {
      const c = configOfKernel(program, kernel);
      const tensorCore = tensorCoreTiling(program, kernel, options);
      const decode = decodeTiling(program, kernel, options);
      const adapterGrad = adapterGradTiling(program, kernel);
      return { ...kernel, cuda: { tensorCore, decode, adapterGrad, launches: launchesOf(kernel, tensorCore, decode, adapterGrad, c) } };
    }),
  };
}
