// The grid of a model-op launch, from the call's sizes (its u32 arguments by parameter name:
// rows, count, columns, stride, width) and the kernel's constants: what each entry point's
// header states as `grid.x = ...`, as a function the runtime calls (test/backends/cuda/
// model-ops.test.ts checks the two agree). Attention's grids are helper A's (attentionGrid).
import type { ModelOpKernel } from './model-ops.ts';

export type Grid = [number, number, number];

/** The entry points with one thread per element of `count`. */
const ELEMENTWISE_ENTRIES: Readonly<Record<'swiglu' | 'residual' | 'adamw' | 'dropout', readonly string[]>> = {
  swiglu: ['forward', 'forwardInActivation', 'backward', 'backwardFromActivation', 'backwardToActivation'], residual: ['add', 'addFromActivation', 'zero', 'accumulate'], adamw: ['step'], dropout: ['multipliers'],
};

/** RMSNorm's entry points, one warp a row; the KeepingInput forwards also write x in 16 bits for the backward, whose FromActivation entries read it so. */
const RMSNORM_ENTRIES: readonly string[] = [
  'forward', 'forwardToActivation', 'forwardKeepingInput', 'forwardToActivationKeepingInput',
  'backward', 'backwardOverwrite', 'backwardFromActivation', 'backwardOverwriteFromActivation',
];

const ceil = (a: number, b: number): number => Math.ceil(a / b);

function size(sizes: Readonly<Record<string, unknown>>, name: string, kernel: string, entry: string): number {
  const value = sizes[name];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new RangeError(`${kernel}.${entry}: the grid needs ${name} (a non-negative integer), got ${String(value)}`);
  return value;
}

function constant(kernel: Pick<ModelOpKernel, 'kernel' | 'constants'>, name: string): number {
  const value = kernel.constants[name];
  if (value === undefined) throw new RangeError(`${kernel.kernel} has no constant ${name}`);
  return value;
}

function unknownEntry(kernel: Pick<ModelOpKernel, 'kernel' | 'op'>, entry: string): never {
  throw new RangeError(`${kernel.kernel} (${kernel.op}) has no entry point ${entry}`);
}

/**
 * [x, y, z] for one launch of `entry`; a zero anywhere means there is nothing to launch. `sizes`
 * may be the launch's whole argument record (only the named sizes are read). No closures here:
 * the runtime calls this for every model-op launch.
 */
export function modelOpGrid(kernel: Pick<ModelOpKernel, 'kernel' | 'op' | 'constants'>, entry: string, sizes: Readonly<Record<string, unknown>>): Grid {
  const name = kernel.kernel;
  switch (kernel.op) {
    case 'embedding':
      return entry === 'forward' || entry === 'forwardFromActivationTable' ? [size(sizes, 'rows', name, entry), ceil(constant(kernel, 'CHANNELS'), constant(kernel, 'THREADS')), 1] : unknownEntry(kernel, entry);
    case 'rmsnorm':
      if (entry === 'forwardToActivationFewRows') return [size(sizes, 'rows', name, entry), 1, 1];
      return RMSNORM_ENTRIES.includes(entry) ? [ceil(size(sizes, 'rows', name, entry), constant(kernel, 'ROWS_PER_BLOCK')), 1, 1] : unknownEntry(kernel, entry);
    case 'convert':
      if (entry === 'toActivation') return [size(sizes, 'rows', name, entry), ceil(size(sizes, 'stride', name, entry), constant(kernel, 'THREADS')), 1];
      if (entry === 'copyActivation') return [size(sizes, 'rows', name, entry), ceil(size(sizes, 'columns', name, entry), constant(kernel, 'THREADS') * constant(kernel, 'COPY_VECTOR')), 1];
      return entry === 'fromActivation' || entry === 'accumulateFromActivation' || entry === 'scaledToActivation'
        ? [size(sizes, 'rows', name, entry), ceil(size(sizes, 'columns', name, entry), constant(kernel, 'THREADS')), 1]
        : unknownEntry(kernel, entry);
    case 'rope':
      if (entry === 'decodeForward' || entry === 'decodeFromActivation') return [ceil(size(sizes, 'width', name, entry) / 2, constant(kernel, 'THREADS')), 1, 1];
      if (entry === 'decodePairFromActivation') return [ceil((size(sizes, 'width', name, entry) + size(sizes, 'keyWidth', name, entry)) / 2, constant(kernel, 'THREADS')), 1, 1];
      return entry === 'forward' || entry === 'forwardFromActivation' || entry === 'forwardInActivation' || entry === 'backward' || entry === 'backwardToActivation'
        ? [ceil((size(sizes, 'rows', name, entry) * size(sizes, 'width', name, entry)) / 2, constant(kernel, 'THREADS')), 1, 1]
        : unknownEntry(kernel, entry);
    case 'swiglu':
    case 'residual':
    case 'adamw':
    case 'dropout': {
      if (!ELEMENTWISE_ENTRIES[kernel.op].includes(entry)) unknownEntry(kernel, entry);
      // Every swiglu entry and the residual adds take a vector of consecutive elements a thread.
      const vector = kernel.op === 'swiglu' ? constant(kernel, 'VECTOR')
        : kernel.op === 'residual' && entry.startsWith('add') ? constant(kernel, 'ADD_VECTOR') : 1;
      return [ceil(size(sizes, 'count', name, entry), constant(kernel, 'THREADS') * vector), 1, 1];
    }
    case 'lm_head':
      if (entry === 'forward') return [ceil(constant(kernel, 'VOCAB'), constant(kernel, 'TILE')), ceil(size(sizes, 'rows', name, entry), constant(kernel, 'TILE')), 1];
      return entry === 'backward' ? [ceil(constant(kernel, 'CHANNELS'), constant(kernel, 'TILE')), ceil(size(sizes, 'rows', name, entry), constant(kernel, 'TILE')), 1] : unknownEntry(kernel, entry);
    case 'cross_entropy':
      if (entry === 'forward' || entry === 'chunkLoss' || entry === 'chunkGradient' || entry === 'chunkGradientToActivation') return [size(sizes, 'rows', name, entry), 1, 1];
      if (entry === 'loss') return [1, 1, 1];
      return entry === 'backward' ? [size(sizes, 'rows', name, entry), ceil(constant(kernel, 'VOCAB'), constant(kernel, 'THREADS')), 1] : unknownEntry(kernel, entry);
    case 'unpool':
      if (entry === 'dropPooled') return [ceil(size(sizes, 'rows', name, entry) * size(sizes, 'groups', name, entry), constant(kernel, 'THREADS')), 1, 1];
      return entry === 'accumulate' || entry === 'overwrite'
        ? [size(sizes, 'rows', name, entry), ceil(size(sizes, 'columns', name, entry), constant(kernel, 'THREADS') * constant(kernel, 'COLUMNS_PER_THREAD')), 1]
        : unknownEntry(kernel, entry);
    case 'decode_attention':
      if (entry === 'append') return [ceil(constant(kernel, 'KV_HEADS') * constant(kernel, 'HEAD_SIZE'), constant(kernel, 'APPEND_THREADS')), 1, 1];
      return entry === 'forward' ? [constant(kernel, 'HEADS'), constant(kernel, 'SPLITS'), 1] : unknownEntry(kernel, entry);
    case 'sum_squares':
      if (entry === 'partials') return [constant(kernel, 'BLOCKS'), 1, 1];
      return entry === 'finish' ? [1, 1, 1] : unknownEntry(kernel, entry);
    default:
      return unknownEntry(kernel, entry);
  }
}
