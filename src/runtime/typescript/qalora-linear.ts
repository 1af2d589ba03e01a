// A frozen linear layer with an optional trainable QA-LoRA adapter, forward and backward.
//
// Layout: input-major like QALORA.md and GPTQ, W is K×N and y = x·W (x: [rows, K], y: [rows, N]).
// llama2.c stores [N, K]; the model transposes once when it quantizes (qalora-model.ts).
//
// The frozen base is either
// - 'quantized': codes q (K×N), scales s and zeros z (L×N), L = K/g. Ŵ is NOT materialized:
//   the forward dequantizes group by group through the identity
//       Σ_{i∈k} x_i · s[k,o]·(q[i,o] − z[k,o]) = s[k,o] · (Σ_{i∈k} x_i·q[i,o] − z[k,o]·Σ_{i∈k} x_i),
//   so the inner loop multiplies x by raw codes and the scale/zero are applied once per group
//   (the group sum Σ x_i is the same sum the adapter's pooling takes). dx = dy·Ŵᵀ uses the
//   mirror identity: with w_o = dy_o·s[k,o], dx_i = Σ_o w_o·q[i,o] − Σ_o w_o·z[k,o] for i ∈ k.
//   Zeros may be fractional (a merged adapter) — nothing here assumes integers.
// - 'dense': a float Ŵ (K×N) — the unquantized control (and a QLoRA-style comparison point).
//
// The adapter (QALORA.md, as src/reference/qalora-layer.ts):
//   u = pool(x) [rows, L],  v = drop(u)·A [rows, r],  y += σ·v·B,  σ = alpha/r
//   dB += σ·vᵀ·dy,  dv = σ·dy·Bᵀ,  dA += drop(u)ᵀ·dv,  du = drop(dv·Aᵀ),  dx += unpool(du)
// The backward reads only u, v and the mask (re-expanded from its draws) from the forward — never x.
//
// Versions (tokens/s of forward+backward+AdamW on stories260K, B=4 T=32, 2-core CPU):
//   v1 one input row per pass over the outputs                         ~870
//   v2 four input rows per pass (fewer accumulator loads/stores)       ~1060
import type { Pooling } from '../../reference/adapter.ts';
import { poolingFactor } from '../../reference/adapter.ts';
import type { QuantizedWeight } from '../../quant/quantized-weight.ts';
import { checkLength, type Floats } from './floats.ts';
import { type DropoutDraws, expandDropoutMask } from './dropout-draws.ts';

export type FrozenWeight =
  | { readonly kind: 'quantized'; readonly weight: QuantizedWeight }
  | { readonly kind: 'dense'; readonly inFeatures: number; readonly outFeatures: number; /** Ŵ, K×N */ readonly weight: Floats };

export interface Adapter {
  readonly groupSize: number; // g, divides K; equals the quantization group when quantized
  readonly rank: number; // r
  readonly pooling: Pooling;
  /** σ = alpha / r. */
  readonly scaling: number;
  /** Dropout probability on the pooled input u (training only). */
  readonly dropout: number;
  /** A, L×r, and B, r×N, row-major; trainable. */
  readonly a: Floats;
  readonly b: Floats;
  /** ∂loss/∂A and ∂loss/∂B, same shapes; the backward accumulates into them. */
  readonly gradA: Floats;
  readonly gradB: Floats;
}

export interface QaLoraLinear {
  readonly base: FrozenWeight;
  readonly adapter: Adapter | null;
}

/** What the forward keeps for the backward: u and v are written, the mask is read. */
export interface AdapterActivations {
  /** Pooled input before dropout, [rows, L]. */
  readonly u: Floats;
  /** drop(u)·A, [rows, r]. */
  readonly v: Floats;
  /**
   * Keep / drop per entry of u, [rows, L], with drop probability adapter.dropout, as the draws
   * that make it (dropout-draws.ts: each backend expands it, the cuda one on the device); none = no dropout.
   */
  mask: DropoutDraws | undefined;
}

export function inFeaturesOf(base: FrozenWeight): number {
  return base.kind === 'quantized' ? base.weight.inFeatures : base.inFeatures;
}

export function outFeaturesOf(base: FrozenWeight): number {
  return base.kind === 'quantized' ? base.weight.outFeatures : base.outFeatures;
}

function checkLayer(layer: QaLoraLinear): void {
  const { base, adapter } = layer;
  if (adapter === null) return;
  const K = inFeaturesOf(base), N = outFeaturesOf(base);
  const { groupSize, rank } = adapter;
  if (K % groupSize !== 0) throw new RangeError(`adapter group size ${groupSize} does not divide in_features ${K}`);
  if (base.kind === 'quantized' && base.weight.groupSize !== groupSize) {
    throw new RangeError(`adapter group size ${groupSize} differs from the quantization group size ${base.weight.groupSize}`);
  }
  checkLength('A', adapter.a, (K / groupSize) * rank);
  checkLength('B', adapter.b, rank * N);
}

/** The keep mask of `saved` over its rows × L entries, on the host; undefined without dropout. */
export function hostKeepMask(layer: QaLoraLinear, saved: AdapterActivations | undefined, rows: number): Uint8Array | undefined {
  const { adapter } = layer;
  if (adapter === null || saved?.mask === undefined) return undefined;
  return expandDropoutMask(saved.mask, rows * (inFeaturesOf(layer.base) / adapter.groupSize), adapter.dropout);
}

/** 1/(1−p) for a kept entry, 0 for a dropped one, 1 without a mask. */
function dropScale(mask: Uint8Array | undefined, index: number, p: number): number {
  if (mask === undefined) return 1;
  return mask[index] ? 1 / (1 - p) : 0;
}

/** y [rows, N] = x [rows, K]·Ŵ (+ σ·drop(pool(x))·A·B); `saved` is required with an adapter. */
export function qaloraLinearForward(y: Floats, x: Floats, rows: number, layer: QaLoraLinear, saved?: AdapterActivations): void {
  checkLayer(layer);
  const mask = hostKeepMask(layer, saved, rows);
  const { base, adapter } = layer;
  const K = inFeaturesOf(base), N = outFeaturesOf(base);
  checkLength('x', x, rows * K);
  checkLength('y', y, rows * N);
  const yAcc = new Float64Array(N);
  const groupAcc = new Float64Array(N);
  for (let row = 0; row < rows; row++) {
    const xRow = row * K;
    yAcc.fill(0);
    if (base.kind === 'quantized') {
      const { groupSize, q, scales, zeros } = base.weight;
      for (let k = 0, first = 0; first < K; k++, first += groupSize) {
        groupAcc.fill(0);
        let groupSum = 0;
        let i = first;
        // Four input rows per pass over the outputs: a quarter of the loads and stores of groupAcc.
        for (; i + 3 < first + groupSize; i += 4) {
          const x0 = x[xRow + i], x1 = x[xRow + i + 1], x2 = x[xRow + i + 2], x3 = x[xRow + i + 3];
          groupSum += (x0 + x1) + (x2 + x3);
          const r0 = i * N, r1 = r0 + N, r2 = r1 + N, r3 = r2 + N;
          for (let o = 0; o < N; o++) groupAcc[o] += (x0 * q[r0 + o] + x1 * q[r1 + o]) + (x2 * q[r2 + o] + x3 * q[r3 + o]);
        }
        for (; i < first + groupSize; i++) {
          const xi = x[xRow + i];
          groupSum += xi;
          const qRow = i * N;
          for (let o = 0; o < N; o++) groupAcc[o] += xi * q[qRow + o];
        }
        const sz = k * N;
        for (let o = 0; o < N; o++) yAcc[o] += scales[sz + o] * (groupAcc[o] - zeros[sz + o] * groupSum);
      }
    } else {
      const w = base.weight;
      for (let i = 0; i < K; i++) {
        const xi = x[xRow + i];
        const wRow = i * N;
        for (let o = 0; o < N; o++) yAcc[o] += xi * w[wRow + o];
      }
    }
    if (adapter !== null) {
      if (saved === undefined) throw new Error('a layer with an adapter needs activations to save');
      const { groupSize, rank, pooling, scaling, dropout, a, b } = adapter;
      const { u, v } = saved;
      const groups = K / groupSize;
      const factor = poolingFactor(pooling, groupSize);
      for (let k = 0; k < groups; k++) {
        let sum = 0;
        for (let i = k * groupSize; i < (k + 1) * groupSize; i++) sum += x[xRow + i];
        u[row * groups + k] = factor * sum;
      }
      for (let j = 0; j < rank; j++) {
        let sum = 0;
        for (let k = 0; k < groups; k++) {
          const index = row * groups + k;
          sum += u[index] * dropScale(mask, index, dropout) * a[k * rank + j];
        }
        v[row * rank + j] = sum;
      }
      for (let j = 0; j < rank; j++) {
        const vj = scaling * v[row * rank + j];
        if (vj === 0) continue;
        const bRow = j * N;
        for (let o = 0; o < N; o++) yAcc[o] += vj * b[bRow + o];
      }
    }
    for (let o = 0; o < N; o++) y[row * N + o] = yAcc[o];
  }
}

/** dx += dy·Ŵᵀ + unpool(du); adapter.gradA, gradB += dA, dB. */
export function qaloraLinearBackward(dx: Floats, dy: Floats, rows: number, layer: QaLoraLinear, saved?: AdapterActivations): void {
  checkLayer(layer);
  const mask = hostKeepMask(layer, saved, rows);
  const { base, adapter } = layer;
  const K = inFeaturesOf(base), N = outFeaturesOf(base);
  checkLength('dx', dx, rows * K);
  checkLength('dy', dy, rows * N);
  const dxAcc = new Float64Array(K);
  const weighted = new Float64Array(N);
  const dv = new Float64Array(adapter?.rank ?? 0);
  for (let row = 0; row < rows; row++) {
    const dyRow = row * N;
    if (base.kind === 'quantized') {
      const { groupSize, q, scales, zeros } = base.weight;
      for (let k = 0, first = 0; first < K; k++, first += groupSize) {
        const sz = k * N;
        let zeroTerm = 0;
        for (let o = 0; o < N; o++) {
          weighted[o] = dy[dyRow + o] * scales[sz + o];
          zeroTerm += weighted[o] * zeros[sz + o];
        }
        let i = first;
        // Four input rows per pass: each weighted[o] is loaded once for four dot products.
        for (; i + 3 < first + groupSize; i += 4) {
          const r0 = i * N, r1 = r0 + N, r2 = r1 + N, r3 = r2 + N;
          let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
          for (let o = 0; o < N; o++) {
            const w = weighted[o];
            s0 += w * q[r0 + o];
            s1 += w * q[r1 + o];
            s2 += w * q[r2 + o];
            s3 += w * q[r3 + o];
          }
          dxAcc[i] = s0 - zeroTerm;
          dxAcc[i + 1] = s1 - zeroTerm;
          dxAcc[i + 2] = s2 - zeroTerm;
          dxAcc[i + 3] = s3 - zeroTerm;
        }
        for (; i < first + groupSize; i++) {
          const qRow = i * N;
          let sum = 0;
          for (let o = 0; o < N; o++) sum += weighted[o] * q[qRow + o];
          dxAcc[i] = sum - zeroTerm;
        }
      }
    } else {
      const w = base.weight;
      for (let i = 0; i < K; i++) {
        const wRow = i * N;
        let sum = 0;
        for (let o = 0; o < N; o++) sum += dy[dyRow + o] * w[wRow + o];
        dxAcc[i] = sum;
      }
    }
    if (adapter !== null) {
      if (saved === undefined) throw new Error('a layer with an adapter needs the activations its forward saved');
      const { groupSize, rank, pooling, scaling, dropout, a, b, gradA, gradB } = adapter;
      const { u, v } = saved;
      const groups = K / groupSize;
      const factor = poolingFactor(pooling, groupSize);
      for (let j = 0; j < rank; j++) {
        const vj = scaling * v[row * rank + j];
        const bRow = j * N;
        let sum = 0;
        for (let o = 0; o < N; o++) {
          gradB[bRow + o] += vj * dy[dyRow + o];
          sum += dy[dyRow + o] * b[bRow + o];
        }
        dv[j] = scaling * sum;
      }
      for (let k = 0; k < groups; k++) {
        const index = row * groups + k;
        const keep = dropScale(mask, index, dropout);
        const dropped = u[index] * keep;
        let du = 0;
        for (let j = 0; j < rank; j++) {
          gradA[k * rank + j] += dropped * dv[j];
          du += dv[j] * a[k * rank + j];
        }
        const dxGroup = factor * keep * du;
        for (let i = k * groupSize; i < (k + 1) * groupSize; i++) dxAcc[i] += dxGroup;
      }
    }
    for (let i = 0; i < K; i++) dx[row * K + i] += dxAcc[i];
  }
}
