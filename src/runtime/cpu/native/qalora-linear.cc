// The QA-LoRA linear layer, forward and backward: the native twin of
// src/runtime/typescript/qalora-linear.ts (read that file's header for the math). Ŵ is never
// materialized: the forward multiplies x by raw codes per group and applies scale and zero
// once per (group, column); dx = dy·Ŵᵀ weights dy by the scales first.
//
// The backward's dx reads the codes transposed (N×K, made once by the caller): for each
// output o it adds w_o·q[i,o] along contiguous inputs i, which vectorizes, and sums over o in
// the TypeScript op's order, so dx matches it bit for bit.
//
// Parallel split (thread-pool.h): forward and dx over rows; dB over rank rows of B; dA over
// groups. Each output element is summed by one item in a fixed order.
//
// Agreement with the TypeScript op: the forward follows its summation order exactly (four
// input rows per pass, group sums, then the adapter), so y, u and v match bit for bit; so does
// the quantized dx; the dense dx and the adapter's dv use dot.h's four-lane order, and dA, dB are summed
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

// R rows at once: each code is loaded and converted once for R rows. Every row's arithmetic is
// the one-row arithmetic, whatever R, so the blocking changes no result.
template <int R>
void quantizedRowsForward(double* __restrict yAcc, double* __restrict groupAcc, const float* __restrict x, const LinearLayer& layer) {
  const int64_t K = layer.inFeatures, N = layer.outFeatures, g = layer.quantGroup;
  const uint8_t* q = layer.q;
  for (int64_t k = 0, first = 0; first < K; k++, first += g) {
    std::fill(groupAcc, groupAcc + R * N, 0.0);
    double groupSum[R] = {};
    int64_t i = first;
    for (; i + 3 < first + g; i += 4) {
      double xs[R][4];
      for (int r = 0; r < R; r++) {
        for (int j = 0; j < 4; j++) xs[r][j] = x[r * K + i + j];
        groupSum[r] += (xs[r][0] + xs[r][1]) + (xs[r][2] + xs[r][3]);
      }
      const uint8_t* __restrict q0 = q + i * N;
      const uint8_t* __restrict q1 = q0 + N;
      const uint8_t* __restrict q2 = q1 + N;
      const uint8_t* __restrict q3 = q2 + N;
      for (int64_t o = 0; o < N; o++) {
        const double c0 = q0[o], c1 = q1[o], c2 = q2[o], c3 = q3[o];
        for (int r = 0; r < R; r++) groupAcc[r * N + o] += (xs[r][0] * c0 + xs[r][1] * c1) + (xs[r][2] * c2 + xs[r][3] * c3);
      }
    }
    for (; i < first + g; i++) {
      double xs[R];
      for (int r = 0; r < R; r++) {
        xs[r] = x[r * K + i];
        groupSum[r] += xs[r];
      }
      const uint8_t* __restrict qi = q + i * N;
      for (int64_t o = 0; o < N; o++) {
        const double c = qi[o];
        for (int r = 0; r < R; r++) groupAcc[r * N + o] += xs[r] * c;
      }
    }
    const double* __restrict s = layer.scales + k * N;
    const double* __restrict z = layer.zeros + k * N;
    for (int r = 0; r < R; r++) {
      for (int64_t o = 0; o < N; o++) yAcc[r * N + o] += s[o] * (groupAcc[r * N + o] - z[o] * groupSum[r]);
    }
  }
}

// dx for R rows, before the adapter: dx_i = Σ_o w_o·q[i,o] − Σ_o w_o·z[k,o] with w_o = dy_o·s[k,o],
// summed over o in order along the transposed codes (contiguous in i, loaded once for R rows).
template <int R>
void quantizedRowsBackward(double* __restrict dxAcc, double* __restrict weighted, const float* __restrict dy, const LinearLayer& layer) {
  const int64_t K = layer.inFeatures, N = layer.outFeatures, g = layer.quantGroup;
  for (int64_t k = 0, first = 0; first < K; k++, first += g) {
    const double* s = layer.scales + k * N;
    const double* z = layer.zeros + k * N;
    double zeroTerm[R] = {};
    for (int r = 0; r < R; r++) {
      for (int64_t o = 0; o < N; o++) {
        weighted[r * N + o] = dy[r * N + o] * s[o];
        zeroTerm[r] += weighted[r * N + o] * z[o];
      }
      for (int64_t i = first; i < first + g; i++) dxAcc[r * K + i] = 0;
    }
    for (int64_t o = 0; o < N; o++) {
      const uint8_t* __restrict codes = layer.qT + o * K + first;
      double w[R];
      for (int r = 0; r < R; r++) w[r] = weighted[r * N + o];
      for (int64_t i = 0; i < g; i++) {
        const double c = codes[i];
        for (int r = 0; r < R; r++) dxAcc[r * K + first + i] += w[r] * c;
      }
    }
    for (int r = 0; r < R; r++) {
      for (int64_t i = first; i < first + g; i++) dxAcc[r * K + i] -= zeroTerm[r];
    }
  }
}

constexpr int64_t kRowBlock = 4;

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
    std::vector<double> yAcc(kRowBlock * N), groupAcc(kRowBlock * N);
    for (int64_t row = begin; row < end; row += kRowBlock) {
      const int64_t block = std::min(kRowBlock, end - row);
      std::fill(yAcc.begin(), yAcc.end(), 0.0);
      const float* xRows = x + row * K;
      if (layer.q != nullptr) {
        if (block == kRowBlock) {
          quantizedRowsForward<kRowBlock>(yAcc.data(), groupAcc.data(), xRows, layer);
        } else {
          for (int64_t r = 0; r < block; r++) quantizedRowsForward<1>(yAcc.data() + r * N, groupAcc.data(), xRows + r * K, layer);
        }
      } else {
        for (int64_t r = 0; r < block; r++) denseRowForward(yAcc.data() + r * N, xRows + r * K, layer);
      }
      for (int64_t r = 0; r < block; r++) {
        if (layer.rank > 0) adapterRowForward(yAcc.data() + r * N, xRows + r * K, row + r, layer);
        for (int64_t o = 0; o < N; o++) y[(row + r) * N + o] = static_cast<float>(yAcc[r * N + o]);
      }
    }
  });
}

void qaloraLinearBackward(float* dx, const float* dy, int64_t rows, const LinearLayer& layer) {
  const int64_t K = layer.inFeatures, N = layer.outFeatures, rank = layer.rank;
  const int64_t groups = rank > 0 ? K / layer.adapterGroup : 0;
  // dv = σ·dy·Bᵀ per row, kept for dA.
  std::vector<double> dv(rows * rank);

  parallelFor(rows, grainFor(K * N), [&](int64_t begin, int64_t end) {
    std::vector<double> dxBlock(kRowBlock * K), weighted(kRowBlock * N);
    for (int64_t row0 = begin; row0 < end; row0 += kRowBlock) {
      const int64_t block = std::min(kRowBlock, end - row0);
      if (layer.q != nullptr) {
        if (block == kRowBlock) {
          quantizedRowsBackward<kRowBlock>(dxBlock.data(), weighted.data(), dy + row0 * N, layer);
        } else {
          for (int64_t r = 0; r < block; r++) quantizedRowsBackward<1>(dxBlock.data() + r * K, weighted.data(), dy + (row0 + r) * N, layer);
        }
      }
      for (int64_t row = row0; row < row0 + block; row++) {
        const float* dyRow = dy + row * N;
        double* dxAcc = dxBlock.data() + (row - row0) * K;
        if (layer.q == nullptr) {
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
