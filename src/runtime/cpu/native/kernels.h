// The CPU kernels, one concept per .cc file, each the native twin of a TypeScript op under
// src/runtime/typescript/ (same arguments, same conventions: row-major, a forward overwrites its
// outputs, a backward ACCUMULATES (+=) into its gradients). Storage is float32; sums are
// carried in double and rounded once on store, as the TypeScript ops do, so results agree to
// float32 rounding (most outputs bit for bit). Every kernel splits its work with parallelFor
// (thread-pool.h) so that its results do not depend on the number of threads.
// No N-API here: addon.cc converts JavaScript values into these plain structs.
#pragma once

#include <cstdint>

namespace qalc {

// ---- qalora-linear.cc: frozen (quantized or dense) base + optional QA-LoRA adapter ----------

struct LinearLayer {
  int inFeatures;   // K
  int outFeatures;  // N
  // Quantized base (q != nullptr): codes K×N, scales and zeros L×N with L = K / quantGroup;
  // the backward also reads the codes transposed, qT (N×K), so that dx runs along contiguous inputs.
  const uint8_t* q;
  const uint8_t* qT;
  const double* scales;
  const double* zeros;
  int quantGroup;
  // Dense base (q == nullptr): Ŵ, K×N.
  const float* dense;
  // Adapter (rank == 0: none). A is L×r, B is r×N with L = K / adapterGroup.
  int rank;
  int adapterGroup;
  double poolFactor;  // 1/g (mean) or 1 (sum)
  double scaling;     // σ = alpha / r
  double dropout;
  const float* a;
  const float* b;
  float* gradA;
  float* gradB;
  // Saved activations: u [rows, L], v [rows, r]; mask [rows, L] or nullptr (no dropout).
  float* u;
  float* v;
  const uint8_t* mask;
};

void qaloraLinearForward(float* y, const float* x, int64_t rows, const LinearLayer& layer);
void qaloraLinearBackward(float* dx, const float* dy, int64_t rows, const LinearLayer& layer);

// ---- matmul.cc: dense products -------------------------------------------------------------

/** y[i] = Σ_j w[i·in + j]·x[j] for W stored [out, in] (llama2.c); one input row. */
void matvecOutMajor(float* y, const float* x, const float* w, int64_t inFeatures, int64_t outFeatures);
/** logits [rows, vocab] = x [rows, channels] · Eᵀ. */
void lmHeadForward(float* logits, const float* x, const float* classifier, int64_t rows, int64_t channels, int64_t vocab);
/** dx += dlogits · E. */
void lmHeadBackward(float* dx, const float* dLogits, const float* classifier, int64_t rows, int64_t channels, int64_t vocab);

// ---- attention.cc: causal grouped-query attention over [B, T] -------------------------------

struct AttentionShape {
  int batch, seqLen, heads, kvHeads, headSize;
};

void attentionForward(float* out, float* probs, const float* q, const float* k, const float* v, const AttentionShape& shape);
void attentionBackward(float* dq, float* dk, float* dv, const float* dOut, const float* q, const float* k, const float* v,
                       const float* probs, const AttentionShape& shape);

// ---- rmsnorm.cc, rope.cc, swiglu.cc ---------------------------------------------------------

void rmsnormForward(float* out, float* rstd, const float* x, const float* weight, int64_t rows, int64_t channels, double eps);
void rmsnormBackward(float* dx, const float* dy, const float* x, const float* weight, const float* rstd, int64_t rows, int64_t channels);

/** direction +1: forward rotation; −1: backward. cos/sin are [positions, headSize/2]. */
void ropeRotate(float* x, const float* cos, const float* sin, int64_t batch, int64_t seqLen, int64_t width, int64_t headSize, int direction);

void swigluForward(float* out, const float* gate, const float* up, int64_t count);
void swigluBackward(float* dGate, float* dUp, const float* dOut, const float* gate, const float* up, int64_t count);

// ---- cross-entropy.cc -------------------------------------------------------------------------

struct CrossEntropyResult {
  double loss;  // NaN when no position counts
  int64_t counted;
};

/** mask may be nullptr (every position counts); a negative target never counts. */
CrossEntropyResult crossEntropyForward(float* probs, const float* logits, const int32_t* targets, const float* mask, int64_t rows,
                                       int64_t vocab);
void crossEntropyBackward(float* dLogits, const float* probs, const int32_t* targets, const float* mask, int64_t rows, int64_t vocab,
                          double dLoss);

}  // namespace qalc
