// RMSNorm with a frozen weight w (LLaMA's rms_att / rms_ffn / rms_final):
//
//   r = 1 / sqrt(mean_j x_j² + eps)          one per row, saved for the backward; eps is the
//                                            model's (Architecture.rmsNormEps)
//   y_j = w_j · (r · x_j)                    as LlamaForward's rmsNorm
//
// Backward w.r.t. x only (w is frozen), with d_j = dy_j · w_j:
//
//   dx_j = r · d_j − x_j · r³ / C · Σ_k d_k x_k
import type { Floats } from './floats.ts';

/** x, out: [rows, channels]; rstd: [rows] (written). The backward needs no eps: rstd holds it. */
export function rmsnormForward(out: Floats, rstd: Floats, x: Floats, weight: Floats, rows: number, channels: number, eps: number): void {
  for (let row = 0; row < rows; row++) {
    const base = row * channels;
    let sumSquares = 0;
    for (let j = 0; j < channels; j++) sumSquares += x[base + j] * x[base + j];
    const r = 1 / Math.sqrt(sumSquares / channels + eps);
    rstd[row] = r;
    for (let j = 0; j < channels; j++) out[base + j] = weight[j] * (r * x[base + j]);
  }
}

/** dx += ∂loss/∂x given dy = ∂loss/∂y, the forward's input x and its saved rstd. */
export function rmsnormBackward(dx: Floats, dy: Floats, x: Floats, weight: Floats, rstd: Floats, rows: number, channels: number): void {
  for (let row = 0; row < rows; row++) {
    const base = row * channels;
    const r = rstd[row];
    let dot = 0;
    for (let j = 0; j < channels; j++) dot += dy[base + j] * weight[j] * x[base + j];
    const correction = (r * r * r * dot) / channels;
    for (let j = 0; j < channels; j++) dx[base + j] += r * weight[j] * dy[base + j] - correction * x[base + j];
  }
}
