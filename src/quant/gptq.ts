// GPTQ (Frantar et al., 2022): group-wise quantization that chooses each input row's codes
// knowing the layer's inputs, so that the output error ‖X·(W − Ŵ)‖ is small, not only the
// weight error. With H = 2·XᵀX over calibration activations X [T, K]:
//
//   inputs are quantized one at a time, in order (act-order off, so groups stay consecutive
//   inputs and QA-LoRA's pooling matches them); the rounding error of input i, divided by the
//   i-th diagonal of the Cholesky factor U of H⁻¹ (H⁻¹ = UᵀU, U upper), is fed back into the
//   inputs not yet quantized: W[j] −= err · U[i, j] for j > i (the paper's eq. 3 with the
//   Cholesky reformulation of its section 3.3).
//
// The feedback is applied at once within a block of inputs and lazily, as one product, to the
// inputs after the block ("lazy batch updates", blocks of 128). Blocks are whole groups, so a
// group's scale and zero are found from weights that have received all earlier feedback
// (AutoGPTQ finds them from weights not yet updated within the block; with group 128 the two
// agree). Scales and zeros are GPTQ's min-max ones, as in rtn.ts, asymmetric or symmetric.
// Everything is float64: H is ill-conditioned and the Cholesky factors amplify rounding.
import { groupScaleAndZero, quantizeValue, type RtnOptions } from './rtn.ts';
import { checkGroupShape, type QuantizedWeight } from './quantized-weight.ts';

export interface GptqOptions extends RtnOptions {
  /** Added to H's diagonal as this fraction of its mean diagonal (GPTQ's percdamp). Default 0.01. */
  readonly damp?: number;
  /** Inputs per lazy-update block before rounding down to whole groups. Default 128. */
  readonly blockSize?: number;
}

/** H cannot be factored: the calibration activations span too little, even after damping. */
export class HessianError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HessianError';
  }
}

/** Σ xᵀx over calibration rows, K×K; `hessian()` is GPTQ's H = 2·XᵀX / rows. */
export class HessianAccumulator {
  readonly inFeatures: number;
  private readonly sum: Float64Array;
  private rows = 0;

  constructor(inFeatures: number) {
    this.inFeatures = inFeatures;
    this.sum = new Float64Array(inFeatures * inFeatures);
  }

  /** Adds `rows` activations x [rows, K], row-major. */
  add(x: ArrayLike<number>, rows: number): void {
    const K = this.inFeatures;
    if (x.length < rows * K) throw new RangeError(`${x.length} values are fewer than ${rows} rows of ${K}`);
    const { sum } = this;
    const row = new Float64Array(K);
    for (let t = 0; t < rows; t++) {
      for (let i = 0; i < K; i++) row[i] = x[t * K + i]!;
      // Lower triangle only; hessian() mirrors it.
      for (let i = 0; i < K; i++) {
        const xi = row[i]!;
        if (xi === 0) continue;
        const base = i * K;
        for (let j = 0; j <= i; j++) sum[base + j] += xi * row[j]!;
      }
    }
    this.rows += rows;
  }

  get count(): number {
    return this.rows;
  }

  hessian(): Float64Array {
    const K = this.inFeatures;
    const h = new Float64Array(K * K);
    const scale = this.rows > 0 ? 2 / this.rows : 0;
    for (let i = 0; i < K; i++) {
      for (let j = 0; j <= i; j++) h[i * K + j] = h[j * K + i] = this.sum[i * K + j]! * scale;
    }
    return h;
  }
}

/** In place: the lower Cholesky factor L of a symmetric n×n matrix (A = L·Lᵀ); the upper triangle is zeroed. */
function choleskyLower(a: Float64Array, n: number, what: string): void {
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j]!;
    for (let k = 0; k < j; k++) d -= a[j * n + k]! ** 2;
    if (!(d > 0)) throw new HessianError(`${what} is not positive definite (pivot ${j} is ${d.toExponential(3)})`);
    const pivot = Math.sqrt(d);
    a[j * n + j] = pivot;
    for (let i = j + 1; i < n; i++) {
      let s = a[i * n + j]!;
      for (let k = 0; k < j; k++) s -= a[i * n + k]! * a[j * n + k]!;
      a[i * n + j] = s / pivot;
    }
    for (let k = j + 1; k < n; k++) a[j * n + k] = 0;
  }
}

/** U upper with H⁻¹ = Uᵀ·U (torch: cholesky(cholesky_inverse(cholesky(H)), upper=True)). */
export function inverseCholeskyUpper(h: Float64Array, n: number): Float64Array {
  const l = Float64Array.from(h);
  choleskyLower(l, n, 'the damped Hessian');
  // L⁻¹ (lower), column by column by forward substitution.
  const inv = new Float64Array(n * n);
  for (let c = 0; c < n; c++) {
    inv[c * n + c] = 1 / l[c * n + c]!;
    for (let i = c + 1; i < n; i++) {
      let s = 0;
      for (let k = c; k < i; k++) s += l[i * n + k]! * inv[k * n + c]!;
      inv[i * n + c] = -s / l[i * n + i]!;
    }
  }
  // H⁻¹ = L⁻ᵀ·L⁻¹.
  const hinv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = i; k < n; k++) s += inv[k * n + i]! * inv[k * n + j]!;
      hinv[i * n + j] = hinv[j * n + i] = s;
    }
  }
  choleskyLower(hinv, n, 'the inverse Hessian');
  // U = Mᵀ for the lower factor M of H⁻¹.
  const u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) u[i * n + j] = hinv[j * n + i]!;
  return u;
}

/**
 * Quantizes W (K×N, input-major, row-major) with GPTQ given H (K×K, e.g. from
 * HessianAccumulator). Returns the same form as quantizeRtn; with H = I the codes are RTN's.
 */
export function quantizeGptq(weight: Float64Array, inFeatures: number, outFeatures: number, hessian: Float64Array, options: GptqOptions): QuantizedWeight {
  const { bits, groupSize } = options;
  const symmetric = options.symmetric ?? false;
  const K = inFeatures;
  const N = outFeatures;
  checkGroupShape(K, N, groupSize, bits);
  if (weight.length !== K * N) throw new RangeError(`weight has ${weight.length} elements, expected ${K}×${N}`);
  if (hessian.length !== K * K) throw new RangeError(`H has ${hessian.length} elements, expected ${K}×${K}`);
  const damp = options.damp ?? 0.01;
  if (!(damp > 0)) throw new RangeError(`damp must be positive, got ${damp}`);

  const w = Float64Array.from(weight);
  const h = Float64Array.from(hessian);
  // An input that is zero in every calibration row says nothing about its weights; GPTQ gives
  // it a unit diagonal and zero weights, so it cannot absorb feedback.
  for (let i = 0; i < K; i++) {
    if (h[i * K + i] === 0) {
      h[i * K + i] = 1;
      w.fill(0, i * N, (i + 1) * N);
    }
  }
  let meanDiagonal = 0;
  for (let i = 0; i < K; i++) meanDiagonal += h[i * K + i]! / K;
  for (let i = 0; i < K; i++) h[i * K + i] += damp * meanDiagonal;
  const u = inverseCholeskyUpper(h, K);

  const requested = options.blockSize ?? 128;
  const block = groupSize <= requested ? Math.floor(requested / groupSize) * groupSize : groupSize;
  const q = new Uint8Array(K * N);
  const scales = new Float64Array((K / groupSize) * N);
  const zeros = new Float64Array((K / groupSize) * N);
  const scale = new Float64Array(N);
  const zero = new Float64Array(N);
  for (let first = 0; first < K; first += block) {
    const end = Math.min(first + block, K);
    const errors = new Float64Array((end - first) * N);
    for (let i = first; i < end; i++) {
      if (i % groupSize === 0) {
        const group = i / groupSize;
        for (let o = 0; o < N; o++) {
          let min = Infinity;
          let max = -Infinity;
          for (let r = i; r < i + groupSize; r++) {
            const v = w[r * N + o]!;
            if (v < min) min = v;
            if (v > max) max = v;
          }
          const params = groupScaleAndZero(min, max, bits, symmetric);
          scale[o] = scales[group * N + o] = params.scale;
          zero[o] = zeros[group * N + o] = params.zero;
        }
      }
      const d = u[i * K + i]!;
      const err = errors.subarray((i - first) * N, (i - first + 1) * N);
      for (let o = 0; o < N; o++) {
        const code = quantizeValue(w[i * N + o]!, scale[o]!, zero[o]!, bits);
        q[i * N + o] = code;
        err[o] = (w[i * N + o]! - scale[o]! * (code - zero[o]!)) / d;
      }
      for (let j = i + 1; j < end; j++) {
        const factor = u[i * K + j]!;
        if (factor === 0) continue;
        for (let o = 0; o < N; o++) w[j * N + o] -= err[o]! * factor;
      }
    }
    // The block's feedback to every later input, at once.
    for (let j = end; j < K; j++) {
      for (let i = first; i < end; i++) {
        const factor = u[i * K + j]!;
        if (factor === 0) continue;
        const err = (i - first) * N;
        for (let o = 0; o < N; o++) w[j * N + o] -= errors[err + o]! * factor;
      }
    }
  }
  return { inFeatures: K, outFeatures: N, groupSize, bits, q, scales, zeros };
}
