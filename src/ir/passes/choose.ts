// Passes that choose, per kernel, how it computes: shape class, dtypes, the packed-weight
// layout and tiling. Each is a pure function of the program.
import type { KernelRole } from '../../plan/plan.ts';
import type { KernelIR, KernelProgram, ShapeClass, Tiling } from '../kernel-ir.ts';
import { configOfKernel } from './share-layers.ts';

function mapKernels(program: KernelProgram, update: (kernel: KernelIR) => KernelIR): KernelProgram {
  return { ...program, kernels: program.kernels.map(update) };
}

const SHAPE_CLASS: Readonly<Record<KernelRole, ShapeClass>> = {
  forward: 'tiled',
  backward_data: 'tiled',
  decode: 'decode',
  adapter_grad: 'adapter',
  quantize: 'elementwise',
  pack: 'elementwise',
  dequantize: 'elementwise',
  merge: 'elementwise',
  dense_forward: 'tiled',
  dense_backward_data: 'tiled',
};

/** Pass 3: the tiled matmuls (prefill, dx), the memory-bound decode, the small adapter products. */
export function chooseShapeClass(program: KernelProgram): KernelProgram {
  return mapKernels(program, (kernel) => ({ ...kernel, shapeClass: SHAPE_CLASS[kernel.role] }));
}

/**
 * Pass 4: activations in the target's precision; sums, scales, zeros and the adapter in f32
 * (scales are fp16 on disk and widened on upload; the adapter trains in f32).
 */
export function assignDtypes(program: KernelProgram): KernelProgram {
  return mapKernels(program, (kernel) => ({
    ...kernel,
    dtypes: { activation: program.precision, accumulate: 'f32', scale: 'f32', zero: 'f32', adapter: 'f32', code: 'u32' },
  }));
}

/** Pass 5: GPTQ v1 qweight words, float zeros (see WeightLayout). */
export function chooseWeightLayout(program: KernelProgram): KernelProgram {
  return mapKernels(program, (kernel) => {
    const c = configOfKernel(program, kernel);
    return {
      ...kernel,
      weightLayout: {
        format: 'gptq-v1',
        bits: c.bits,
        wordRows: Math.ceil((c.paddedInFeatures * c.bits) / 32),
        codeMask: (1 << c.bits) - 1,
        codesStraddleWords: 32 % c.bits !== 0,
        groupIndex: 'sequential',
      },
    };
  });
}

const TILE = 16;
const DECODE_MAX_TOKENS = 16;
// 256, not 64: the dequantize kernel of a 4096×11008 layer is 45 M one-weight threads, and in
// blocks of 64 (704 K blocks) the H200 spent 430 µs scheduling them, 7 % of its memory floor; it
// is on the training path now (dequantize + cuBLAS). 256 is also WebGPU's default workgroup limit.
const ELEMENTWISE_THREADS = 256;
const FLOAT_BYTES = 4;
/**
 * Columns a CUDA dequantize thread writes (dequantize q3): one column a thread stored 2 bytes a
 * row, 64 B a warp, and read codes, scales and zeros 4 bytes at a time (0.037 ms for 4096² on
 * the H200, 3.4× its memory floor).
 */
const DEQUANTIZE_COLUMNS = 4;

/** WGSL: each invocation computes up to 4 × 4 outputs (register tiling); the 4 columns are one vec4 in the templates. */
const WGSL_THREAD_TILE = 4;

/**
 * Pass 6: tiles with bounds checks. Tiled kernels stage TILE-deep reduction chunks of x (or dy)
 * and of the dequantized weight through workgroup memory; the forward's chunks never cross a
 * quantization group (a group of 43 is read as 16 + 16 + 11), so each chunk has one scale and
 * zero per column and the pooled sum of a group is complete when its last chunk is.
 * CUDA's portable tiles are TILE × TILE outputs, one per thread. WGSL's are register-tiled:
 * a TILE × TILE workgroup whose invocations each compute a 4 × 4 block, a 64 × 64 tile. Rows
 * shrink (per invocation first, then per workgroup) while workgroup memory (the x and weight
 * tiles, plus tile rows × rank adapter activations) would exceed the target's limit.
 */
export function chooseTiling(program: KernelProgram): KernelProgram {
  const { limits } = program;
  return mapKernels(program, (kernel) => {
    const c = configOfKernel(program, kernel);
    const rank = c.adapter?.rank ?? 0;
    let tiling: Tiling;
    switch (kernel.shapeClass) {
      case 'tiled': {
        const fusesAdapter = kernel.role === 'forward' && rank > 0;
        const threadColumns = program.target === 'wgsl' ? WGSL_THREAD_TILE : 1;
        let threadRows = program.target === 'wgsl' ? WGSL_THREAD_TILE : 1;
        let workgroupRows = TILE;
        const columns = TILE * threadColumns;
        const bytesFor = (rows: number) => FLOAT_BYTES * (rows * TILE + TILE * columns + (fusesAdapter ? rows * rank : 0));
        const fits = () => bytesFor(workgroupRows * threadRows) <= limits.maxWorkgroupBytes && workgroupRows * TILE <= limits.maxInvocationsPerWorkgroup;
        while (!fits() && threadRows > 1) threadRows /= 2;
        while (!fits() && workgroupRows > 1) workgroupRows /= 2;
        const rows = workgroupRows * threadRows;
        if (bytesFor(rows) > limits.maxWorkgroupBytes) throw new Error(`${kernel.name}: rank ${rank} needs more workgroup memory than the target has`);
        tiling = {
          workgroupSize: [TILE, workgroupRows, 1], tileRows: rows, tileColumns: columns, tileReduce: TILE,
          chunksPerGroup: kernel.role === 'forward' ? Math.ceil(c.group / TILE) : 0,
          maxTokens: 0, workgroupBytes: bytesFor(rows),
          ...(program.target === 'wgsl' ? { threadTile: { rows: threadRows, columns: threadColumns } } : {}),
        };
        break;
      }
      case 'decode': {
        const threads = Math.min(64, limits.maxInvocationsPerWorkgroup);
        const bytes = FLOAT_BYTES * DECODE_MAX_TOKENS * rank;
        if (bytes > limits.maxWorkgroupBytes) throw new Error(`${kernel.name}: rank ${rank} needs more workgroup memory than the target has`);
        tiling = {
          workgroupSize: [threads, 1, 1], tileRows: DECODE_MAX_TOKENS, tileColumns: threads, tileReduce: c.group,
          chunksPerGroup: 1, maxTokens: DECODE_MAX_TOKENS, workgroupBytes: bytes,
        };
        break;
      }
      default: {
        // CUDA's dequantize writes 4 adjacent columns a thread where rows allow 16-byte loads of
        // codes, scales and zeros and 8-byte stores of Ŵ (out_features a multiple of 4).
        const columnsPerThread = program.target === 'cuda' && kernel.role === 'dequantize' && c.outFeatures % DEQUANTIZE_COLUMNS === 0 ? DEQUANTIZE_COLUMNS : 1;
        tiling = {
          workgroupSize: [ELEMENTWISE_THREADS, 1, 1], tileRows: 1, tileColumns: ELEMENTWISE_THREADS * columnsPerThread, tileReduce: 0,
          chunksPerGroup: 0, maxTokens: 0, workgroupBytes: 0,
        };
      }
    }
    return { ...kernel, tiling };
  });
}
