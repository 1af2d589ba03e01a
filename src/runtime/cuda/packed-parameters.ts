// The adapters' device storage for the optimizer on the device (device-adamw.ts): the values of
// every parameter in one buffer, their gradients in a second, AdamW's two moments in a third and
// a fourth, all four laid out alike — parameter after parameter in the optimizer's order, which is
// A then B of each layer (QaLoraModel.parameters()). So a layer's A|B, the linear kernels'
// adapterWeights binding, is one range of the values buffer and its dA|dB, adapter_grad's
// adapterWeightGrads, one range of the gradients buffer: both are bound where they are
// (resident-port.ts), with no packing copy and no scratch to accumulate from, and one adamw launch
// (and one gradient norm) covers every parameter.
//
// The arrays are placed in that storage (DeviceArrays.place): their device copies are views of
// it for good, so a sync still brings one parameter back to the host (checkpoints, finite
// checks) and an upload of the host's values (the first step, a resumed run's adapters, the
// gradients the trainer averaged on the host) lands in it.
//
// Each parameter starts on a 16-byte boundary: the decode kernels read B in 16-byte cp.async
// segments, as they do from a buffer of its own when A's length is a multiple of 4 (then B follows
// A with no gap). The gaps are zeros in all four buffers and stay zeros under AdamW (a zero value
// with zero gradient and moments is not moved, weight decay included) and add nothing to the norm.
import type { OptimizerParameter } from '../optimizer.ts';
import type { DeviceBuffer } from './cuda.ts';
import { float32, type DeviceArrays } from './device-arrays.ts';
import type { ActivationType } from './host-data.ts';

/** Floats a parameter's start is aligned to (16 bytes). */
const ALIGNMENT = 4;

/** The storage holds whole rows of this many floats: the shadow's convert launch takes rows × SHADOW_ROW. */
export const SHADOW_ROW = 1024;

export class PackedParameters {
  /** Floats in each buffer, gaps included: what one launch over all of them covers. */
  readonly count: number;
  readonly values: DeviceBuffer;
  readonly grads: DeviceBuffer;
  readonly m: DeviceBuffer;
  readonly v: DeviceBuffer;
  /** Where each parameter starts, in bytes. */
  private readonly offsets: readonly number[];

  /** `shadow`: the 16-bit encoding the values are also read in (see above); none by default. */
  constructor(private readonly parameters: readonly OptimizerParameter[], arrays: DeviceArrays, shadow?: ActivationType) {
    const offsets: number[] = [];
    let end = 0;
    for (const { value, grad, name } of parameters) {
      if (grad.length !== value.length) throw new RangeError(`${name}: ${value.length} values but ${grad.length} gradients`);
      end = Math.ceil(end / ALIGNMENT) * ALIGNMENT;
      offsets.push(end * 4);
      end += value.length;
    }
    this.offsets = offsets;
    this.count = Math.ceil(Math.max(end, 1) / SHADOW_ROW) * SHADOW_ROW;
    const zeros = () => {
      const buffer = arrays.allocate(this.count * 4);
      buffer.fill(0, this.count * 4);
      return buffer;
    };
    [this.values, this.grads, this.m, this.v] = [zeros(), zeros(), zeros(), zeros()];
    if (shadow !== undefined) arrays.shadow(this.values, shadow, this.count / SHADOW_ROW, SHADOW_ROW);
    parameters.forEach(({ value, grad, name }, p) => {
      arrays.place(float32(value, name), this.values, offsets[p]!);
      arrays.place(float32(grad, `${name}'s gradient`), this.grads, offsets[p]!);
    });
  }

  /** Parameter p's part of one of the four buffers. */
  partOf(buffer: DeviceBuffer, p: number): DeviceBuffer {
    return buffer.view(this.offsets[p]!, this.parameters[p]!.value.length * 4);
  }
}
