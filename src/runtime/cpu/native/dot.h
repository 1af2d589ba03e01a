// Dot products with a fixed summation order, shared by the dense kernels.
//
// Four partial sums s0..s3 take the elements j ≡ 0, 1, 2, 3 (mod 4), the tail goes to s0, and
// the result is (s0 + s1) + (s2 + s3) — the order of LlamaForward's TypeScript matmul, so the
// native decode reproduces it bit for bit. Products of two float32 values are exact in double,
// so the compiler may keep the four lanes in one SIMD register without changing a bit.
#pragma once

#include <cstdint>

namespace qalc {

typedef double Double4 __attribute__((vector_size(32)));

inline double dotF32(const float* __restrict a, const float* __restrict b, int64_t n) {
  Double4 acc = {0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 3 < n; j += 4) {
    Double4 x = {a[j], a[j + 1], a[j + 2], a[j + 3]};
    Double4 y = {b[j], b[j + 1], b[j + 2], b[j + 3]};
    acc += x * y;
  }
  for (; j < n; j++) acc[0] += static_cast<double>(a[j]) * b[j];
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

/** Σ_j w[j]·q[j] for double weights and byte codes, same lane order as dotF32. */
inline double dotF64U8(const double* __restrict w, const uint8_t* __restrict q, int64_t n) {
  Double4 acc = {0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 3 < n; j += 4) {
    Double4 x = {w[j], w[j + 1], w[j + 2], w[j + 3]};
    Double4 y = {static_cast<double>(q[j]), static_cast<double>(q[j + 1]), static_cast<double>(q[j + 2]), static_cast<double>(q[j + 3])};
    acc += x * y;
  }
  for (; j < n; j++) acc[0] += w[j] * q[j];
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

/** Σ_j w[j]·b[j] for double weights and float values, same lane order as dotF32. */
inline double dotF64F32(const double* __restrict w, const float* __restrict b, int64_t n) {
  Double4 acc = {0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 3 < n; j += 4) {
    Double4 x = {w[j], w[j + 1], w[j + 2], w[j + 3]};
    Double4 y = {b[j], b[j + 1], b[j + 2], b[j + 3]};
    acc += x * y;
  }
  for (; j < n; j++) acc[0] += w[j] * b[j];
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

}  // namespace qalc
