// RMSNorm forward and backward (x only; the weight is frozen): twin of
// src/runtime/typescript/rmsnorm.ts, same summation order, so outputs match it bit for bit (up to the
// last bit of 1/sqrt, which both take in double). Split over rows.
#include <cmath>

#include "kernels.h"
#include "thread-pool.h"

namespace qalc {

void rmsnormForward(float* out, float* rstd, const float* x, const float* weight, int64_t rows, int64_t channels, double eps) {
  parallelFor(rows, grainFor(2 * channels), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; row++) {
      const float* xRow = x + row * channels;
      double sumSquares = 0;
      for (int64_t j = 0; j < channels; j++) sumSquares += static_cast<double>(xRow[j]) * xRow[j];
      const double r = 1 / std::sqrt(sumSquares / channels + eps);
      rstd[row] = static_cast<float>(r);
      float* outRow = out + row * channels;
      for (int64_t j = 0; j < channels; j++) outRow[j] = static_cast<float>(weight[j] * (r * xRow[j]));
    }
  });
}

void rmsnormBackward(float* dx, const float* dy, const float* x, const float* weight, const float* rstd, int64_t rows, int64_t channels) {
  parallelFor(rows, grainFor(3 * channels), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; row++) {
      const float* xRow = x + row * channels;
      const float* dyRow = dy + row * channels;
      const double r = rstd[row];
      double dot = 0;
      for (int64_t j = 0; j < channels; j++) dot += static_cast<double>(dyRow[j]) * weight[j] * xRow[j];
      const double correction = (r * r * r * dot) / channels;
      float* dxRow = dx + row * channels;
      for (int64_t j = 0; j < channels; j++) dxRow[j] = static_cast<float>(dxRow[j] + (r * weight[j] * dyRow[j] - correction * xRow[j]));
    }
  });
}

}  // namespace qalc
