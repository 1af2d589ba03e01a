// The QA-LoRA linear layer, forward and backward: the native twin of
// src/train/ops/qalora-linear.ts (read that file's header for the math). Ŵ is never
// materialized: the forward multiplies x by raw codes per group and applies scale and zero
// once per (group, column); dx = dy·Ŵᵀ weights dy by the scales first.
//
// Parallel split (thread-pool.h): forward and dx over rows; dB over rank rows of B; dA over
// groups. Each output element is summed by one item in a fixed order.
//
// Agreement with the TypeScript op: the forward follows its summation order exactly (four
// input rows per pass, group sums, then the adapter), so y, u and v match bit for bit; the
// backward's dot products over the outputs use dot.h's four-lane order, and dA, dB are summed
// over rows in double and added to the gradients once (the TypeScript op adds row by row in
// the gradient's own precision), so they agree to float32 rounding.
#include <algorithm>
#include <cmath>
#include <vector>

#include "dot.h"
#include "kernels.h"
#include "thread-pool.h"

namespace qalc {
namespace {

double dropScale(const LinearLayer& layer, int64_t index) {
  if (layer.mask == nullptr) return 1;
  return layer.mask[index] ? 1 / (1 - layer.dropout) : 0;
}

void quantizedRowForward(double* __restrict yAcc, double* __restrict groupAcc, const float* __restrict x, const LinearLayer& layer) {
  const int64_t K = layer.inFeatures, N = layer.outFeatures, g = layer.quantGroup;
  const uint8_t* q = layer.q;
  for (int64_t k = 0, first = 0; first < K; k++, first += g) {
    for (int64_t o = 0; o < N; o++) groupAcc[o] = 0;
    double groupSum = 0;
    int64_t i = first;
    for (; i + 3 < first + g; i += 4) {
      const double x0 = x[i], x1 = x[i + 1], x2 = x[i + 2], x3 = x[i + 3];
      groupSum += (x0 + x1) + (x2 + x3);
      const uint8_t* __restrict q0 = q + i * N;
      const uint8_t* __restrict q1 = q0 + N;
      const uint8_t* __restrict q2 = q1 + N;
      const uint8_t* __restrict q3 = q2 + N;
      for (int64_t o = 0; o < N; o++) groupAcc[o] += (x0 * q0[o] + x1 * q1[o]) + (x2 * q2[o] + x3 * q3[o]);
    }
    for (; i < first + g; i++) {
      const double xi = x[i];
      groupSum += xi;
      const uint8_t* __restrict qi = q + i * N;
      for (int64_t o = 0; o < N; o++) groupAcc[o] += xi * qi[o];
    }
    const double* __restrict s = layer.scales + k * N;
    const double* __restrict z = layer.zeros + k * N;
    for (int64_t o = 0; o < N; o++) yAcc[o] += s[o] * (groupAcc[o] - z[o] * groupSum);
  }
}

void denseRowForward(double* __restrict yAcc, const float* __restrict x, const LinearLayer& layer) {
  const int64_t K = layer.inFeatures, N = layer.outFeatures;
  for (int64_t i = 0; i < K; i++) {
    const double xi = x[i];
    const float* __restrict w = layer.dense + i * N;
    for (int64_t o = 0; o < N; o++) yAcc[o] += xi * w[o];
  }
}

void adapterRowForward(double* __restrict yAcc, const float* __restrict x, int64_t row, const LinearLayer& layer) {
  const int64_t K = layer.inFeatures, N = layer.outFeatures, g = layer.adapterGroup, rank = layer.rank;
  const int64_t groups = K / g;
  float* u = layer.u + row * groups;
  float* v = layer.v + row * rank;
  for (int64_t k = 0; k < groups; k++) {
    double sum = 0;
    for (int64_t i = k * g; i < (k + 1) * g; i++) sum += x[i];
    u[k] = static_cast<float>(layer.poolFactor * sum);
  }
  for (int64_t j = 0; j < rank; j++) {
    double sum = 0;
    for (int64_t k = 0; k < groups; k++) sum += static_cast<double>(u[k]) * dropScale(layer, row * groups + k) * layer.a[k * rank + j];
    v[j] = static_cast<float>(sum);
  }
  for (int64_t j = 0; j < rank; j++) {
    const double vj = layer.scaling * v[j];
    if (vj == 0) continue;
    const float* __restrict b = layer.b + j * N;
    for (int64_t o = 0; o < N; o++) yAcc[o] += vj * b[o];
  }
}

}  // namespace

void qaloraLinearForward(float* y, const float* x, int64_t rows, const LinearLayer& layer) {
  const int64_t K = layer.inFeatures, N = layer.outFeatures;
  parallelFor(rows, grainFor(K * N), [&](int64_t begin, int64_t end) {
    std::vector<double> yAcc(N), groupAcc(N);
    for (int64_t row = begin; row < end; row++) {
      const float* xRow = x + row * K;
      std::fill(yAcc.begin(), yAcc.end(), 0.0);
      if (layer.q != nullptr) {
        quantizedRowForward(yAcc.data(), groupAcc.data(), xRow, layer);
      } else {
        denseRowForward(yAcc.data(), xRow, layer);
      }
      if (layer.rank > 0) adapterRowForward(yAcc.data(), xRow, row, layer);
      for (int64_t o = 0; o < N; o++) y[row * N + o] = static_cast<float>(yAcc[o]);
    }
  });
}

void qaloraLinearBackward(float* dx, const float* dy, int64_t rows, const LinearLayer& layer) {
  const int64_t K = layer.inFeatures, N = layer.outFeatures, rank = layer.rank;
  const int64_t groups = rank > 0 ? K / layer.adapterGroup : 0;
  // dv = σ·dy·Bᵀ per row, kept for dA.
  std::vector<double> dv(rows * rank);

  parallelFor(rows, grainFor(K * N), [&](int64_t begin, int64_t end) {
    std::vector<double> dxAcc(K), weighted(N);
    for (int64_t row = begin; row < end; row++) {
      const float* dyRow = dy + row * N;
      if (layer.q != nullptr) {
        const int64_t g = layer.quantGroup;
        for (int64_t k = 0, first = 0; first < K; k++, first += g) {
          const double* s = layer.scales + k * N;
          const double* z = layer.zeros + k * N;
          double zeroTerm = 0;
          for (int64_t o = 0; o < N; o++) {
            weighted[o] = dyRow[o] * s[o];
            zeroTerm += weighted[o] * z[o];
          }
          for (int64_t i = first; i < first + g; i++) dxAcc[i] = dotF64U8(weighted.data(), layer.q + i * N, N) - zeroTerm;
        }
      } else {
        for (int64_t i = 0; i < K; i++) dxAcc[i] = dotF32(dyRow, layer.dense + i * N, N);
      }
      if (rank > 0) {
        double* dvRow = dv.data() + row * rank;
        for (int64_t j = 0; j < rank; j++) dvRow[j] = layer.scaling * dotF32(dyRow, layer.b + j * N, N);
        const int64_t g = layer.adapterGroup;
        for (int64_t k = 0; k < groups; k++) {
          double du = 0;
          for (int64_t j = 0; j < rank; j++) du += dvRow[j] * layer.a[k * rank + j];
          const double dxGroup = layer.poolFactor * dropScale(layer, row * groups + k) * du;
          for (int64_t i = k * g; i < (k + 1) * g; i++) dxAcc[i] += dxGroup;
        }
      }
      float* dxRow = dx + row * K;
      for (int64_t i = 0; i < K; i++) dxRow[i] = static_cast<float>(dxRow[i] + dxAcc[i]);
    }
  });
  if (rank == 0) return;

  // dB[j, :] += σ · Σ_rows v[row, j] · dy[row, :]
  parallelFor(rank, grainFor(rows * N), [&](int64_t begin, int64_t end) {
    std::vector<double> acc(N);
    for (int64_t j = begin; j < end; j++) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t row = 0; row < rows; row++) {
        const double vj = layer.scaling * layer.v[row * rank + j];
        const float* __restrict dyRow = dy + row * N;
        for (int64_t o = 0; o < N; o++) acc[o] += vj * dyRow[o];
      }
      float* gradB = layer.gradB + j * N;
      for (int64_t o = 0; o < N; o++) gradB[o] = static_cast<float>(gradB[o] + acc[o]);
    }
  });

  // dA[k, :] += Σ_rows drop(u)[row, k] · dv[row, :]
  parallelFor(groups, grainFor(rows * rank), [&](int64_t begin, int64_t end) {
    std::vector<double> acc(rank);
    for (int64_t k = begin; k < end; k++) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t row = 0; row < rows; row++) {
        const double dropped = static_cast<double>(layer.u[row * groups + k]) * dropScale(layer, row * groups + k);
        for (int64_t j = 0; j < rank; j++) acc[j] += dropped * dv[row * rank + j];
      }
      float* gradA = layer.gradA + k * rank;
      for (int64_t j = 0; j < rank; j++) gradA[j] = static_cast<float>(gradA[j] + acc[j]);
    }
  });
}

}  // namespace qalc
