// The grid of a model-op launch, from the call's sizes (its u32 arguments by parameter name:
// rows, count, columns, stride, width) and the kernel's constants: what each entry point's
// header states as `grid.x = ...`, as a function the runtime calls (test/backends/cuda/
// model-ops.test.ts checks the two agree). Attention's grids are helper A's (attentionGrid).
import type { ModelOpKernel } from './model-ops.ts';

export type Grid = [number, number, number];

/** The entry points with one thread per element of `count`. */
const ELEMENTWISE_ENTRIES: Readonly<Record<'swiglu' | 'residual' | 'adamw' | 'dropout', readonly string[]>> = {
  swiglu: ['forward', 'backward'], residual: ['add', 'zero', 'accumulate'], adamw: ['step'], dropout: ['multipliers'],
};

const ceil = (a: number, b: number): number => Math.ceil(a / b);

function size(sizes: Readonly<Record<string, number>>, name: string, kernel: string): number {
  const value = sizes[name];
  if (value === undefined || !Number.isInteger(value) || value < 0) throw new RangeError(`${kernel}: the grid needs ${name} (a non-negative integer), got ${value}`);
  return value;
}

/** [x, y, z] for one launch of `entry`; a zero anywhere means there is nothing to launch. */
export function modelOpGrid(kernel: Pick<ModelOpKernel, 'kernel' | 'op' | 'constants'>, entry: string, sizes: Readonly<Record<string, number>>): Grid {
  const c = (name: string): number => {
    const value = kernel.constants[name];
    if (value === undefined) throw new RangeError(`${kernel.kernel} has no constant ${name}`);
    return value;
  };
  const n = (name: string): number => size(sizes, name, `${kernel.kernel}.${entry}`);
  const unknown = (): never => {
    throw new RangeError(`${kernel.kernel} (${kernel.op}) has no entry point ${entry}`);
  };
  switch (kernel.op) {
    case 'embedding':
      return entry === 'forward' ? [n('rows'), ceil(c('CHANNELS'), c('THREADS')), 1] : unknown();
    case 'rmsnorm':
      return entry === 'forward' || entry === 'backward' ? [ceil(n('rows'), c('ROWS_PER_BLOCK')), 1, 1] : unknown();
    case 'convert':
      if (entry === 'toActivation') return [n('rows'), ceil(n('stride'), c('THREADS')), 1];
      return entry === 'fromActivation' || entry === 'accumulateFromActivation' ? [n('rows'), ceil(n('columns'), c('THREADS')), 1] : unknown();
    case 'rope':
      return entry === 'forward' || entry === 'backward' ? [ceil((n('rows') * n('width')) / 2, c('THREADS')), 1, 1] : unknown();
    case 'swiglu':
    case 'residual':
    case 'adamw':
    case 'dropout':
      return ELEMENTWISE_ENTRIES[kernel.op].includes(entry) ? [ceil(n('count'), c('THREADS')), 1, 1] : unknown();
    case 'lm_head':
      if (entry === 'forward') return [ceil(c('VOCAB'), c('TILE')), ceil(n('rows'), c('TILE')), 1];
      return entry === 'backward' ? [ceil(c('CHANNELS'), c('TILE')), ceil(n('rows'), c('TILE')), 1] : unknown();
    case 'cross_entropy':
      if (entry === 'forward') return [n('rows'), 1, 1];
      if (entry === 'loss') return [1, 1, 1];
      return entry === 'backward' ? [n('rows'), ceil(c('VOCAB'), c('THREADS')), 1] : unknown();
    case 'unpool':
      return entry === 'accumulate' ? [n('rows'), ceil(n('columns'), c('THREADS') * c('COLUMNS_PER_THREAD')), 1] : unknown();
    case 'sum_squares':
      if (entry === 'partials') return [c('BLOCKS'), 1, 1];
      return entry === 'finish' ? [1, 1, 1] : unknown();
    default:
      return unknown();
  }
}
