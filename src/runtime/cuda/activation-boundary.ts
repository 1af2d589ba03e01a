// Where a model op meets a linear layer (RMSNorm → q/k/v, gate/up, lm_head; gate/up → SwiGLU →
// down; o, down → the residual add; q/k → RoPE), the op binds the activations in the linear
// kernels' own 16-bit layout, so no convert kernel runs between them: an input the linear left
// resident as flat 16-bit rows is read as it is (widened to float exactly, in registers), an
// output whose readers took it as flat 16-bit rows last time is written so (rounded to nearest
// even, as the conversion would round it). Anything else — a padded row stride (a ragged
// binding), a reader that wants float32 (lm_head's f32 GEMM with fp16 activations, the host
// fallback), an array no one has read yet (the first step), a manifest without the entry
// point — keeps the float32 entry point and the conversions, as before.
import type { ModelOp } from '../../backends/cuda/model-ops.ts';
import type { DeviceArrays, Layout } from './device-arrays.ts';
import type { ActivationType } from './host-data.ts';
import type { ModelOpLauncher } from './model-op-launcher.ts';

export interface ActivationBoundary {
  /** The layout to read `host` in: its resident flat 16-bit rows of `count` values, if so and the entry point exists. */
  resident(host: Float32Array, count: number, op: ModelOp, entry: string): Layout | undefined;
  /** The layout to write `host` in: the flat 16-bit rows of `count` values its readers wanted, if so and the entry point exists. */
  wanted(host: Float32Array, count: number, op: ModelOp, entry: string): Layout | undefined;
}

export function activationBoundary(arrays: DeviceArrays, ops: ModelOpLauncher, activation: ActivationType): ActivationBoundary {
  const flat = (layout: Layout | undefined, count: number, op: ModelOp, entry: string): Layout | undefined =>
    layout !== undefined && activation !== 'f32' && layout.encoding === activation && layout.stride === layout.width && layout.rows * layout.width === count && ops.hasEntry(op, entry)
      ? { encoding: layout.encoding, rows: layout.rows, width: layout.width, stride: layout.stride }
      : undefined;
  return {
    resident: (host, count, op, entry) => flat(arrays.residentOf(host), count, op, entry),
    wanted: (host, count, op, entry) => flat(arrays.wanted(host), count, op, entry),
  };
}
