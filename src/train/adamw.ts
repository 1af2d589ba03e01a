// AdamW (Loshchilov & Hutter) as torch.optim.AdamW computes it, with global gradient-norm
// clipping (torch.nn.utils.clip_grad_norm_) and a learning-rate schedule (the warm-up
// schedules of Hugging Face transformers). For step t = 1, 2, …, for every element:
//
//   g ← g · min(1, maxNorm / (‖g‖₂ + 1e-6))     ‖g‖₂ over ALL parameters together
//   θ ← θ · (1 − lr·λ)                         decoupled weight decay
//   m ← β1·m + (1−β1)·g,   v ← β2·v + (1−β2)·g²
//   θ ← θ − lr · (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + ε)
//
// lr = schedule(t − 1): the schedule sees the 0-based index of the update, as HF's lambdas do.
import type { AdamWOptions, Optimizer, OptimizerParameter, OptimizerState, Schedule, StepReport } from '../runtime/optimizer.ts';

export type { AdamWOptions, Optimizer, OptimizerParameter, Schedule, StepReport } from '../runtime/optimizer.ts';

export class AdamW implements Optimizer {
  private readonly m: Float64Array[];
  private readonly v: Float64Array[];
  private readonly options: Required<Omit<AdamWOptions, 'maxGradNorm'>> & { maxGradNorm: number | undefined };
  private t = 0;

  constructor(readonly parameters: readonly OptimizerParameter[], options: AdamWOptions) {
    this.options = {
      lr: options.lr, beta1: options.beta1 ?? 0.9, beta2: options.beta2 ?? 0.999, eps: options.eps ?? 1e-8,
      weightDecay: options.weightDecay ?? 0, maxGradNorm: options.maxGradNorm,
    };
    // Moments are kept in float64 whatever the parameters' type: the CPU reference should not
    // add its own rounding to the comparison.
    this.m = parameters.map((p) => new Float64Array(p.value.length));
    this.v = parameters.map((p) => new Float64Array(p.value.length));
  }

  get stepsDone(): number {
    return this.t;
  }

  /** Moments and step count, for checkpoints: restoring them makes the next step bit-identical. */
  state(): { readonly step: number; readonly m: readonly Float64Array[]; readonly v: readonly Float64Array[] } {
    return { step: this.t, m: this.m, v: this.v };
  }

  restore(state: OptimizerState): void {
    if (state.m.length !== this.m.length || state.v.length !== this.v.length) throw new RangeError(`optimizer state has ${state.m.length} parameters, the optimizer ${this.m.length}`);
    state.m.forEach((m, i) => {
      if (m.length !== this.m[i].length || state.v[i].length !== this.v[i].length) throw new RangeError(`optimizer state of ${this.parameters[i].name} has the wrong size`);
      this.m[i].set(m);
      this.v[i].set(state.v[i]);
    });
    this.t = state.step;
  }

  /** Global L2 norm of every gradient. */
  gradNorm(): number {
    let sum = 0;
    for (const { grad } of this.parameters) for (let i = 0; i < grad.length; i++) sum += grad[i] * grad[i];
    return Math.sqrt(sum);
  }

  /** One update from the gradients currently in the parameters (they are not modified). */
  step(): StepReport {
    const { lr: lrOption, beta1, beta2, eps, weightDecay, maxGradNorm } = this.options;
    const lr = typeof lrOption === 'number' ? lrOption : lrOption(this.t);
    this.t++;
    const gradNorm = this.gradNorm();
    const clip = maxGradNorm !== undefined ? Math.min(1, maxGradNorm / (gradNorm + 1e-6)) : 1;
    const correction1 = 1 - Math.pow(beta1, this.t);
    const correction2 = 1 - Math.pow(beta2, this.t);
    const decay = 1 - lr * weightDecay;
    this.parameters.forEach(({ value, grad }, p) => {
      const m = this.m[p], v = this.v[p];
      for (let i = 0; i < value.length; i++) {
        const g = grad[i] * clip;
        m[i] = beta1 * m[i] + (1 - beta1) * g;
        v[i] = beta2 * v[i] + (1 - beta2) * g * g;
        const update = (m[i] / correction1) / (Math.sqrt(v[i] / correction2) + eps);
        value[i] = value[i] * decay - lr * update;
      }
    });
    return { step: this.t, lr, gradNorm, clipped: clip < 1 };
  }
}

export interface ScheduleOptions {
  readonly peak: number;
  /** Updates of linear warm-up from 0 to peak (HF: lr = peak · step / warmup). Default 0. */
  readonly warmup?: number;
  /** Total updates; linear and cosine reach `final` there. */
  readonly total: number;
  /** Learning rate at the end of the decay. Default 0. */
  readonly final?: number;
}

function warmupFactor(step: number, warmup: number): number | undefined {
  return step < warmup ? step / Math.max(1, warmup) : undefined;
}

/** Warm-up, then constant at peak (HF get_constant_schedule_with_warmup). */
export function constantSchedule(options: Omit<ScheduleOptions, 'total' | 'final'>): Schedule {
  const { peak, warmup = 0 } = options;
  return (step) => peak * (warmupFactor(step, warmup) ?? 1);
}

/** Warm-up, then linear decay from peak to final at `total` (HF get_linear_schedule_with_warmup). */
export function linearSchedule(options: ScheduleOptions): Schedule {
  const { peak, warmup = 0, total, final = 0 } = options;
  return (step) => {
    const w = warmupFactor(step, warmup);
    if (w !== undefined) return peak * w;
    const remaining = Math.max(0, (total - step) / Math.max(1, total - warmup));
    return final + (peak - final) * remaining;
  };
}

/** Warm-up, then half a cosine from peak to final at `total` (HF get_cosine_schedule_with_warmup). */
export function cosineSchedule(options: ScheduleOptions): Schedule {
  const { peak, warmup = 0, total, final = 0 } = options;
  return (step) => {
    const w = warmupFactor(step, warmup);
    if (w !== undefined) return peak * w;
    const progress = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
    return final + (peak - final) * 0.5 * (1 + Math.cos(Math.PI * progress));
  };
}
