// AdamW on the GPU, for the cuda backend that runs every op there (device-ops.ts): the same
// update as src/train/adamw.ts (torch.optim.AdamW with clip_grad_norm_), on the model-op
// kernels adamw and sum_squares, with the adapters, their gradients and both moments kept on
// the device. A step is: the squared global gradient norm summed parameter by parameter in a
// fixed order (sum_squares, deterministic), read back (one float: the trainer logs it and stops
// on a non-finite one before any update), then one adamw launch per parameter that clips with
// that sum on the device. The moments are float32 here (float64 in the host reference): they go
// to the host only for checkpoints, and a resumed run puts them back.
import type { AdamWOptions, Optimizer, OptimizerParameter, OptimizerState, StepReport } from '../optimizer.ts';
import type { DeviceBuffer } from './cuda.ts';
import { dense, float32, type DeviceArrays } from './device-arrays.ts';
import type { ModelOpLauncher } from './model-op-launcher.ts';

export class DeviceAdamW implements Optimizer {
  readonly onDevice = true as const;
  private readonly m: DeviceBuffer[];
  private readonly v: DeviceBuffer[];
  private readonly sum: DeviceBuffer;
  private readonly partials: DeviceBuffer;
  private t = 0;
  /** The norm of the gradients as they are now, until the next backward changes them (step() recomputes). */
  private norm: number | undefined;

  constructor(readonly parameters: readonly OptimizerParameter[], private readonly options: AdamWOptions,
    private readonly arrays: DeviceArrays, private readonly ops: ModelOpLauncher, private readonly synchronize: () => void) {
    const zeros = (p: OptimizerParameter) => {
      const buffer = arrays.allocate(p.value.length * 4);
      buffer.fill(0, p.value.length * 4);
      return buffer;
    };
    this.m = parameters.map(zeros);
    this.v = parameters.map(zeros);
    this.sum = arrays.allocate(4);
    this.partials = arrays.allocate(ops.constant('sum_squares', 'BLOCKS') * 4);
  }

  get stepsDone(): number {
    return this.t;
  }

  gradNorm(): number {
    this.sum.fill(0, 4);
    const blocks = this.ops.constant('sum_squares', 'BLOCKS');
    for (const { grad, name } of this.parameters) {
      const x = this.arrays.read(float32(grad, name), dense(grad.length));
      this.ops.launch('sum_squares', 'partials', { partials: this.partials, x, count: grad.length });
      this.ops.launch('sum_squares', 'finish', { sum: this.sum, partials: this.partials });
    }
    this.arrays.release();
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
    const threads = this.ops.constant('adamw', 'THREADS');
    this.parameters.forEach(({ value, grad, name }, p) => {
      const count = value.length;
      this.ops.launch('adamw', 'step', {
        value: this.arrays.update(float32(value, name)), grad: this.arrays.read(float32(grad, name), dense(count)), m: this.m[p]!, v: this.v[p]!,
        sumSquares: maxGradNorm !== undefined ? this.sum : null, count, lr, beta1, beta2, eps, weightDecay,
        maxGradNorm: maxGradNorm ?? 0, step: this.t,
      });
    });
    this.arrays.release();
    return { step: this.t, lr, gradNorm, clipped: maxGradNorm !== undefined && maxGradNorm / (gradNorm + 1e-6) < 1 };
  }

  state(): { readonly step: number; readonly m: readonly Float64Array[]; readonly v: readonly Float64Array[] } {
    this.synchronize();
    const download = (buffers: readonly DeviceBuffer[]) => buffers.map((buffer, p) => {
      const values = new Float32Array(this.parameters[p]!.value.length);
      buffer.download(values);
      return Float64Array.from(values);
    });
    return { step: this.t, m: download(this.m), v: download(this.v) };
  }

  restore(state: OptimizerState): void {
    if (state.m.length !== this.m.length || state.v.length !== this.v.length) throw new RangeError(`optimizer state has ${state.m.length} parameters, the optimizer ${this.m.length}`);
    this.parameters.forEach((p, i) => {
      if (state.m[i]!.length !== p.value.length || state.v[i]!.length !== p.value.length) throw new RangeError(`optimizer state of ${p.name} has the wrong size`);
      this.m[i]!.upload(Float32Array.from(state.m[i]!));
      this.v[i]!.upload(Float32Array.from(state.v[i]!));
    });
    this.t = state.step;
    this.norm = undefined;
  }
}
