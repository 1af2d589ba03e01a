// The decode on tensor cores (v7; templates/cuda/decode.cu.hbs, `decodeMma`): y[t][n] =
// Σ_k x[t][k]·W-hat[k][n] as mma.sync m16n8k16 with the WEIGHT as the M side (16 output
// columns × k16 an instruction) and the tokens as N (8 a fragment, padded), so one dequantized
// code feeds up to 8 tokens and a tile of 16 tokens is two fragments. The CUDA cores are left
// the dequantization, and little of it:
//   - codes become 16-bit floats by the magic number (OR into 0x4300 / 0x6400: 128 + q in bf16,
//     1024 + q in f16, exact), two codes of one word an instruction, without the group's scale:
//     the mma sums P = Σ x·(bias + q) over a group, and y += s·(P − (z + bias)·X) with X = Σ x
//     (a second mma against ones), once a group per output: no rounding of W-hat at all;
//   - the reduction index k is permuted so that lane (g, t) of a warp owns word row t of each
//     4-word k-block, for 4 adjacent columns (one 16-byte load), and its activations are the 16
//     bytes of the same inputs: every byte of the weight is loaded once, 16 bytes at a time.
// A block is 32 columns (two m16 tiles a warp) by `warps` warps; the groups are dealt
// round-robin to the warps (a split of K inside the block, so the grid is N / 32 blocks), each
// warp keeping `loadDepth` k-blocks of loads in flight. The warps meet in shared memory in warp
// order: deterministic. u = pool(x) comes from X, v = drop(u)·A accumulates per group beside the
// mma (the group's A row is loaded with its codes), and y += σ·v·B after the warps meet.
import type { ScalarType } from '../kernel-ir.ts';
import type { CudaDecodeTiling, DecodeVariant } from './choose-cuda.ts';
import type { configOfKernel } from './share-layers.ts';

/** Output columns a block: two m16 tiles. */
const MMA_DECODE_COLUMNS = 32;
/** Words of one k-block a column: one for each of a quad's 4 lanes. */
const KBLOCK_WORDS = 4;
/** Token tiles (one extern "C" kernel each, the launcher choosing by T), up to the kernel's maximum. */
const TOKEN_TILES = [1, 4, 8, 16, 24, 32];
const REGISTER_FILE = 65536;
const REGISTERS_PER_THREAD = 128;
/** Tiles of more than 8 tokens: 256 registers a thread (ptxas's cap is 255). */
const LARGE_TILE_REGISTERS = 256;
const STATIC_SHARED_LIMIT = 48 * 1024;
const WARP = 32;
/**
 * k-blocks of the weight's loads in flight a warp at T = 1 with groups of 4 k-blocks (6 with
 * fewer: their folds take more registers; half that for larger tiles, whose sums do); always
 * a multiple of a group's k-blocks, so groups of up to 64 4-bit codes (128 at T > 8 or T < 5).
 */
const LOAD_DEPTH = 8;
/** Registers a thread of a 3-bit v9 tile is left at the least (widerUnitTile). */
const THREE_WORD_UNIT_REGISTERS = 168;

/**
 * A lane's unit of codes (v8 body, _decode-code-pairs.cu.hbs): the word rows it loads for its 4
 * columns (3-bit codes: 32 codes in 3 words, so 3 rows; else 1) and the codes they hold. A
 * k-block is a quad's 4 units; a group is whole k-blocks, or (2-bit g32, 3-bit g64) whole
 * `subgroups` of one k-block, each the units of 4 / subgroups lanes.
 */
export interface DecodeUnits {
  readonly unitWords: number;
  readonly unitCodes: number;
  readonly kBlocksPerGroup: number;
  readonly subgroups: number;
}

/** The units of a layer, or null where its groups do not fall on units and k-blocks. */
export function decodeUnits(c: { bits: number; group: number; groups: number; inFeatures: number }): DecodeUnits | null {
  if (![2, 3, 4, 8].includes(c.bits)) return null;
  const unitWords = c.bits === 3 ? 3 : 1;
  const unitCodes = (32 * unitWords) / c.bits;
  const kBlockInputs = KBLOCK_WORDS * unitCodes;
  // A unit's inputs all in K or all in the zero padding; its 16-bit activations 8-byte aligned.
  if (c.inFeatures % unitCodes !== 0 || c.group % unitCodes !== 0) return null;
  if (c.group >= kBlockInputs) return c.group % kBlockInputs === 0 ? { unitWords, unitCodes, kBlocksPerGroup: c.group / kBlockInputs, subgroups: 1 } : null;
  const subgroups = kBlockInputs / c.group;
  return Number.isInteger(subgroups) && c.groups % subgroups === 0 ? { unitWords, unitCodes, kBlocksPerGroup: 1, subgroups } : null;
}

/** The `mma` decode shape, or null where the layer does not allow it (the caller falls back to `wide` or `split`). */
/**
 * `widerUnits`: the layers v7's and v8's bodies do not take run v9 (choose-cuda.ts,
 * DECODE_V9_WHERE_V8_DOES_NOT_FIT); variant 'v9' runs every layer on it.
 */
export function mmaDecodeTiling(c: ReturnType<typeof configOfKernel>, activation: ScalarType, maxTokens: number, multiprocessors: number, variant: DecodeVariant = 'v7', widerUnits = variant === 'v9'): CudaDecodeTiling | null {
  // bias + q (or q - 128 for 8-bit codes in bf16) is exact in a 16-bit float.
  if ((activation !== 'bf16' && activation !== 'f16') || c.outFeatures % 4 !== 0) return null;
  const units = decodeUnits(c);
  if (!units) return null;
  const { kBlocksPerGroup } = units;
  // v7's body (and sm_80's, where it is the portable one) and v8's take 2- and 4-bit words in
  // groups of at most two k-blocks; every other layer needs v9's, on every target.
  const v7Fits = (c.bits === 4 || c.bits === 2) && units.subgroups === 1 && (LOAD_DEPTH / 4) % kBlocksPerGroup === 0;
  const v9 = variant === 'v9' || (!v7Fits && widerUnits);
  if (!v7Fits && !v9) return null;
  const codesPerWord = units.unitCodes / units.unitWords;
  const rank = c.adapter?.rank ?? 0;
  const tiles = Math.ceil(c.outFeatures / MMA_DECODE_COLUMNS);
  const tokenTileSizes = [...TOKEN_TILES.filter((t) => t < maxTokens), maxTokens];
  const scratchFor = (warps: number, tokenTile: number) => Math.max(warps * tokenTile * MMA_DECODE_COLUMNS, warps * rank);
  const sharedBytesFor = (scratch: number) => 4 * (scratch + maxTokens * rank + rank * MMA_DECODE_COLUMNS);
  // Tiles of up to 8 tokens (one n8 fragment): the most warps a block for which every block is
  // resident at once (blocks an SM = 16 / warps at 128 registers a thread): fewer column tiles
  // than SMs get 16 warps, 344 tiles get 4. Larger tiles hold v's partial sums for every token
  // (rank / 32 a lane each) and two fragments of sums: half the warps, 255 registers a thread.
  const blocksPerSm = (w: number, registers: number) => Math.floor(REGISTER_FILE / (w * WARP * registers));
  const candidates = [16, 8, 4].filter((w) => sharedBytesFor(scratchFor(w, Math.min(maxTokens, 8))) <= STATIC_SHARED_LIMIT);
  if (candidates.length === 0) return null;
  const warps = candidates.find((w) => tiles <= multiprocessors * blocksPerSm(w, REGISTERS_PER_THREAD)) ?? candidates[candidates.length - 1]!;
  const v7Tiles = tokenTileSizes.map((t) => {
    const one = t <= 8;
    const tileWarps = one ? warps : Math.max(2, warps / 2);
    return {
      maxTokens: t, warps: tileWarps,
      minBlocks: one ? blocksPerSm(tileWarps, REGISTERS_PER_THREAD) : blocksPerSm(tileWarps, LARGE_TILE_REGISTERS),
      // k-blocks of the weight's loads in flight a warp (6 registers a lane each), and slots of
      // the activations' ring (loaded slots − 1 ahead); a round of LOAD_DEPTH holds whole groups.
      loadDepth: t === 1 ? (kBlocksPerGroup === 4 ? LOAD_DEPTH : 6) : LOAD_DEPTH / 2, activationDepth: 2,
      // sm_80 SASS (and the compute_90 PTX, which keeps sm_80's body): ptxas there needs a few
      // more registers for the same body, so shallower rings (8 tokens: 2) keep it from spilling.
      portableLoadDepth: t > 4 && t <= 8 ? LOAD_DEPTH / 4 : LOAD_DEPTH / 2,
    };
  });
  const gridBlocksPerSm = Math.ceil(tiles / multiprocessors);
  const tokenTiles = v9
    ? v7Tiles.map((tile) => widerUnitTile(tile, units, gridBlocksPerSm, warps))
    : variant === 'v7' ? v7Tiles : v7Tiles.map((tile) => v8Tile(variant as Exclude<DecodeVariant, 'v7' | 'v9'>, tile, kBlocksPerGroup, gridBlocksPerSm, warps));
  const scratch = Math.max(...tokenTiles.map((t) => scratchFor(t.warps, t.maxTokens)));
  const bytes = sharedBytesFor(scratch);
  if (bytes > STATIC_SHARED_LIMIT) return null;
  const minBlocks = tokenTiles[0]!.minBlocks;
  return {
    kind: 'mma', maxTokens, columnsPerBlock: MMA_DECODE_COLUMNS, warps, columnThreads: WARP, slices: warps,
    codesPerWord: Number.isInteger(codesPerWord) ? codesPerWord : 0, wordsPerGroup: (c.group * c.bits) / 32, wordBatch: 0, tokenTiles,
    v9, unitWords: units.unitWords, unitCodes: units.unitCodes, subgroups: units.subgroups,
    scratchFloats: scratch, adapterPartialFloats: 0,
    rankPerLane: Math.ceil(rank / WARP), reductionWidth: 0,
    minBlocksPerMultiprocessor: minBlocks, sharedBytes: bytes,
  };
}

/**
 * The v8 body's rings (see _decode-tensor-core-v8.cu.hbs): k-blocks of the weight's loads in
 * flight a warp, the deepest that ptxas fits without spills at the 7B shapes. v8a keeps one
 * scale and zero a lane (6 registers a k-block); v8b and v8c load the quad's 4 scales and zeros
 * as float4s (12 registers a k-block, no shuffles at the fold). Always a multiple of a group's
 * k-blocks.
 */
const V8_RINGS: Readonly<Record<Exclude<DecodeVariant, 'v7' | 'v9'>, { one: number; small: number; large: number }>> = {
  v8a: { one: 4, small: 2, large: 4 },
  v8b: { one: 2, small: 2, large: 2 },
  v8c: { one: 2, small: 2, large: 2 },
  v8d: { one: 2, small: 2, large: 2 },
  v8e: { one: 2, small: 2, large: 2 },
};
/**
 * v8e's rings, weight and activations alike (x, A and the dropout multipliers come from L2,
 * ~600 cycles: v8a–v8d load them one k-block ahead, and a k-block is ~300 cycles of issue).
 */
const V8E_RINGS: readonly { registers: number; maxTokens: number; depth: number; vectors: boolean }[] = [
  { registers: 168, maxTokens: 4, depth: 4, vectors: true },
  { registers: 168, maxTokens: 8, depth: 2, vectors: true },
  { registers: 255, maxTokens: 16, depth: 4, vectors: true },
  { registers: 128, maxTokens: 1, depth: 4, vectors: false },
  { registers: 128, maxTokens: 8, depth: 2, vectors: false },
];
/** v8c's ring by the registers a thread may use and the tile (first match), the deepest without spills at the 7B shapes. */
/** The registers v8d's 16-token tile in blocks of the small tiles' warps needs (ptxas, 4096x11008: no spills). */
const V8D_LARGE_TILE_REGISTERS = 168;
const V8C_RINGS: readonly { registers: number; maxTokens: number; depth: number }[] = [
  { registers: 168, maxTokens: 4, depth: 6 },
  { registers: 168, maxTokens: 8, depth: 4 },
  { registers: 255, maxTokens: 16, depth: 4 },
];

function v8Ring(variant: Exclude<DecodeVariant, 'v7' | 'v9'>, tokens: number, kBlocksPerGroup: number) {
  const ring = V8_RINGS[variant];
  const depth = tokens === 1 ? ring.one : tokens <= 8 ? ring.small : ring.large;
  // portableLoadDepth stays v7's: sm_80 runs v7's body (_decode-tensor-core.cu.hbs).
  return { v8: true, scaleVectors: variant !== 'v8a', loadDepth: Math.max(depth, kBlocksPerGroup) };
}

type TokenTile = CudaDecodeTiling['tokenTiles'][number] & { readonly warps: number };

/**
 * A token tile of a v8 variant from v7's. v8a and v8c take the launch bounds of the blocks the
 * grid actually puts on an SM (344 column tiles on 132 SMs: 3 of 4 warps, where v7 asks 4), so
 * a thread may use 65536 / (3 · 128) = 170 registers at no cost in occupancy. v8c's float4 ring
 * needs them: where blocks of 16 warps leave 128 it takes v8a's scalar ring.
 */
function v8Tile(variant: Exclude<DecodeVariant, 'v7' | 'v9'>, tile: TokenTile, kBlocksPerGroup: number, gridBlocksPerSm: number, smallTileWarps: number): TokenTile {
  if (variant === 'v8d' && tile.maxTokens > 8 && tile.warps < smallTileWarps) {
    // v8d: T = 16 in blocks of the small tiles' warps (4 at 4096x11008: 12 warps an SM where v7's
    // 2 leave 6, its issue-bound T = 16 spread over twice the warps) at 65536 / (3 · 128) = 170
    // registers, with the shallow float4 ring that fits them.
    const resident = Math.max(1, gridBlocksPerSm);
    const registers = Math.floor(REGISTER_FILE / (resident * smallTileWarps * WARP));
    if (registers >= V8D_LARGE_TILE_REGISTERS) {
      return { ...tile, ...v8Ring('v8c', tile.maxTokens, kBlocksPerGroup), warps: smallTileWarps, minBlocks: resident, loadDepth: Math.max(2, kBlocksPerGroup) };
    }
  }
  const resident = Math.max(1, Math.min(tile.minBlocks, gridBlocksPerSm));
  if (variant === 'v8b') return { ...tile, ...v8Ring(variant, tile.maxTokens, kBlocksPerGroup) };
  if (variant === 'v8a') return { ...tile, ...v8Ring(variant, tile.maxTokens, kBlocksPerGroup), minBlocks: resident };
  const registers = Math.min(255, Math.floor(REGISTER_FILE / (resident * tile.warps * WARP)));
  if (variant === 'v8e') {
    const ring = V8E_RINGS.find((r) => registers >= r.registers && tile.maxTokens <= r.maxTokens);
    if (!ring) return { ...tile, ...v8Ring('v8a', tile.maxTokens, kBlocksPerGroup), minBlocks: resident };
    const depth = Math.max(ring.depth, kBlocksPerGroup);
    return { ...tile, ...v8Ring(ring.vectors ? 'v8c' : 'v8a', tile.maxTokens, kBlocksPerGroup), minBlocks: resident, loadDepth: depth, activationDepth: depth };
  }
  const ring = V8C_RINGS.find((r) => registers >= r.registers && tile.maxTokens <= r.maxTokens);
  // Blocks of 16 warps (128 registers): v8a's scalar ring (measured: 4096² T = 1 8.4 µs, v7 12.4).
  if (!ring) return { ...tile, ...v8Ring('v8a', tile.maxTokens, kBlocksPerGroup), minBlocks: resident };
  // v8d otherwise as v8c.
  return { ...tile, ...v8Ring(variant, tile.maxTokens, kBlocksPerGroup), minBlocks: resident, loadDepth: Math.max(ring.depth, kBlocksPerGroup) };
}

/** Registers a lane's ring slots of the weight hold: the units' words, and a group's scales and zeros in its last k-block's slot. */
function ringRegisters(depth: number, units: DecodeUnits, scaleVectors: boolean): number {
  return depth * 4 * units.unitWords + (depth / units.kBlocksPerGroup) * units.subgroups * (scaleVectors ? 8 : 2);
}

/**
 * A token tile of the v9 body (every target): v8c's tile (warps, launch bounds, float4 scales or
 * not) with the deepest ring (whole groups, at most LOAD_DEPTH k-blocks) in the registers v8c's
 * ring of one-word units holds there, so 4-bit g32 gets v8c's own ring; 3-bit units as
 * threeWordUnitTile says. sm_80's ring: 2 k-blocks or one group (its registers are fewer), at
 * most sm_90a's, and one block an SM there (the template's DECODE_V9_MIN_BLOCKS).
 */
function widerUnitTile(tile: TokenTile, units: DecodeUnits, gridBlocksPerSm: number, smallTileWarps: number): TokenTile {
  const like = v8Tile('v8c', tile, 1, gridBlocksPerSm, smallTileWarps);
  const budget = ringRegisters(like.loadDepth ?? 1, { unitWords: 1, unitCodes: 0, kBlocksPerGroup: 1, subgroups: 1 }, like.scaleVectors ?? false);
  const deepest = (vectors: boolean) => {
    // At least 2 k-blocks (the activations' ring of 2 needs an even depth: its slots repeat every round).
    let depth = Math.max(2, units.kBlocksPerGroup);
    while (depth + units.kBlocksPerGroup <= LOAD_DEPTH && ringRegisters(depth + units.kBlocksPerGroup, units, vectors) <= budget) depth += units.kBlocksPerGroup;
    return depth % 2 === 1 && units.kBlocksPerGroup === 1 ? depth - 1 : depth;
  };
  // A k-block of subgroups holds several groups' scales (float4s: 16 registers a slot at 2):
  // up to 8 tokens one scale a lane (8 shuffles a group at the fold) and a deeper ring, so 2-bit
  // g32 gets 8 k-blocks, not 2, 3-bit g64 4 (T = 8: 2, where float4s spill 20 bytes). Tiles of
  // two fragments hold twice the subgroup sums: ptxas spills 2-bit g32 at T = 16 with one scale
  // a lane 4 and 6 deep (72, 4 bytes), not with float4s 2 deep. Whole groups keep v8c's choice
  // (4-bit g32: its tiles).
  const vectors = (like.scaleVectors ?? false) && (units.subgroups === 1 || tile.maxTokens > 8);
  const depth = deepest(vectors);
  const tile3 = units.unitWords === 3 ? threeWordUnitTile(tile.maxTokens, units.kBlocksPerGroup) : null;
  // 3-bit units need ~170-240 registers whatever the ring (ptxas, sm_90a: the 13B shapes' 5120 x
  // 5120 g64 at two 256-thread blocks an SM, 128 registers, spilled 4-56 bytes at T = 1 to 8):
  // at most as many blocks an SM as leave THREE_WORD_UNIT_REGISTERS a thread (4096 x 11008 keeps
  // its measured 3 blocks of 4 warps).
  const minBlocks = units.unitWords === 3
    ? Math.max(1, Math.min(like.minBlocks, Math.floor(REGISTER_FILE / ((like.warps ?? 1) * WARP * THREE_WORD_UNIT_REGISTERS))))
    : like.minBlocks;
  return {
    ...like, minBlocks, loadDepth: tile3?.loadDepth ?? depth, activationDepth: tile3?.activationDepth ?? 2, scaleVectors: tile3?.scaleVectors ?? vectors,
    // Never deeper than sm_90a's own (3-bit T = 16: one group; 2 spills 32 bytes on sm_80).
    portableLoadDepth: Math.min(tile3?.loadDepth ?? depth, Math.max(2, units.kBlocksPerGroup)),
  };
}

/**
 * 3-bit units hold 3 code words and 16 activation words a token fragment a k-block (4-bit: 1
 * and 4), and their groups of 64 are two subgroups. At T = 16 (two fragments) ptxas (sm_90a,
 * 4096x11008 g64 r64) spills 108 bytes with a ring of 2 (16 with one scale a lane and no
 * activation ahead); a ring of one group and no activation ahead: none, 252 registers. Up to 8
 * tokens widerUnitTile's ring fits (T = 1, 4: 4 deep, T = 8: 2, one scale a lane; 166-168).
 */
function threeWordUnitTile(maxTokens: number, kBlocksPerGroup: number): { loadDepth: number; activationDepth: number; scaleVectors: boolean } | null {
  return maxTokens > 8 ? { loadDepth: kBlocksPerGroup, activationDepth: 1, scaleVectors: true } : null;
}
