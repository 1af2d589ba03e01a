// AdamW on the GPU, for the cuda backend that runs every op there (device-ops.ts): the same
// update as src/train/adamw.ts (torch.optim.AdamW with clip_grad_norm_), on the model-op
// kernels adamw and sum_squares, with the adapters, their gradients and both moments kept on
// the device in one packed storage (packed-parameters.ts: values, gradients, m and v each one
// buffer, laid out alike). A step is: the squared global gradient norm over the whole gradient
// buffer (one sum_squares: its two launches; the order of its sums depends on the length only, so
// it is deterministic), read back (one float: the trainer logs it and stops on a non-finite one
// before any update), then one adamw launch over every parameter that clips with that sum on the
// device. The moments are float32 here (float64 in the host reference): they go to the host only
// for checkpoints, and a resumed run puts them back into the storage.
//
// Until the storage, the norm was summed parameter by parameter (448 sums added in float32 at
// the 7B shape) and each parameter had its adamw launch: ~1350 launches a step where there are 3.
// One sum over all gradients rounds once where it rounded per parameter, so the norm can differ
// in its last bits from before (on the order of 1e-7 relative), and with it the clip factor.
import type { AdamWOptions, Optimizer, OptimizerParameter, OptimizerState, StepReport } from '../optimizer.ts';
import type { DeviceBuffer } from './cuda.ts';
import { float32, type DeviceArrays } from './device-arrays.ts';
import type { ActivationType } from './host-data.ts';
import type { ModelOpLauncher } from './model-op-launcher.ts';
import { PackedParameters } from './packed-parameters.ts';

export class DeviceAdamW implements Optimizer {
  readonly onDevice = true as const;
  /** The parameters' values, gradients and moments on the device. */
  readonly storage: PackedParameters;
  private readonly sum: DeviceBuffer;
  private readonly partials: DeviceBuffer;
  private t = 0;
  /** The norm of the gradients as they are now, until the next backward changes them (step() recomputes). */
  private norm: number | undefined;

  constructor(readonly parameters: readonly OptimizerParameter[], private readonly options: AdamWOptions,
    private readonly arrays: DeviceArrays, private readonly ops: ModelOpLauncher, private readonly synchronize: () => void,
    /** The activation type the GEMMs read the adapters in (the storage's shadow; none: they are never read so). */
    shadow?: ActivationType) {
    this.storage = new PackedParameters(parameters, arrays, shadow);
    this.sum = arrays.allocate(4);
    this.partials = arrays.allocate(ops.constant('sum_squares', 'BLOCKS') * 4);
  }

  get stepsDone(): number {
    return this.t;
  }

  /** Every gradient's newest values in the storage: the host's (gradients the trainer averaged there) uploaded, once. */
  private gradientsOnDevice(): void {
    for (const { grad, name } of this.parameters) this.arrays.update(float32(grad, name));
  }

  gradNorm(): number {
    this.sum.fill(0, 4);
    this.gradientsOnDevice();
    const { grads, count } = this.storage;
    this.ops.launch('sum_squares', 'partials', { partials: this.partials, x: grads, count });
    this.ops.launch('sum_squares', 'finish', { sum: this.sum, partials: this.partials });
    this.synchronize();
    const squared = new Float32Array(1);
    this.sum.download(squared);
    this.norm = Math.sqrt(squared[0]!);
    return this.norm;
  }

  step(): StepReport {
    const { lr: lrOption, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0, maxGradNorm } = this.options;
    const gradNorm = this.norm ?? this.gradNorm();
    this.norm = undefined;
    const lr = typeof lrOption === 'number' ? lrOption : lrOption(this.t);
    this.t++;
    // The values the host holds (the first step's, a resumed run's) go to the storage, and from
    // then on the device's are the newest.
    for (const { value, name } of this.parameters) this.arrays.update(float32(value, name));
    this.gradientsOnDevice();
    const { values, grads, m, v, count } = this.storage;
    this.ops.launch('adamw', 'step', {
      value: values, grad: grads, m, v, sumSquares: maxGradNorm !== undefined ? this.sum : null, count, lr, beta1, beta2, eps, weightDecay,
      maxGradNorm: maxGradNorm ?? 0, step: this.t,
    });
    return { step: this.t, lr, gradNorm, clipped: maxGradNorm !== undefined && maxGradNorm / (gradNorm + 1e-6) < 1 };
  }

  state(): { readonly step: number; readonly m: readonly Float64Array[]; readonly v: readonly Float64Array[] } {
    this.synchronize();
    const download = (moment: DeviceBuffer) => this.parameters.map((p, i) => {
      const values = new Float32Array(p.value.length);
      this.storage.partOf(moment, i).download(values);
      return Float64Array.from(values);
    });
    return { step: this.t, m: download(this.storage.m), v: download(this.storage.v) };
  }

  restore(state: OptimizerState): void {
    const count = this.parameters.length;
    if (state.m.length !== count || state.v.length !== count) throw new RangeError(`optimizer state has ${state.m.length} parameters, the optimizer ${count}`);
    this.parameters.forEach((p, i) => {
      if (state.m[i]!.length !== p.value.length || state.v[i]!.length !== p.value.length) throw new RangeError(`optimizer state of ${p.name} has the wrong size`);
      this.storage.partOf(this.storage.m, i).upload(Float32Array.from(state.m[i]!));
      this.storage.partOf(this.storage.v, i).upload(Float32Array.from(state.v[i]!));
    });
    this.t = state.step;
    this.norm = undefined;
  }
}
