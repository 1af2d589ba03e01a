// Fused softmax + cross-entropy with a loss mask: twin of src/runtime/typescript/cross-entropy.ts (its
// header has the math). Split over rows; the loss is summed from per-row terms afterwards, on
// the calling thread, in row order — the TypeScript op's order, so the loss matches it.
#include <cmath>
#include <limits>
#include <vector>

#include "kernels.h"
#include "thread-pool.h"

namespace qalc {
namespace {

bool counts(const int32_t* targets, const float* mask, int64_t row) {
  return targets[row] >= 0 && (mask == nullptr || mask[row] != 0);
}

}  // namespace

CrossEntropyResult crossEntropyForward(float* probs, const float* logits, const int32_t* targets, const float* mask, int64_t rows,
                                       int64_t vocab) {
  std::vector<double> terms(rows);
  parallelFor(rows, grainFor(4 * vocab), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; row++) {
      const float* l = logits + row * vocab;
      float* p = probs + row * vocab;
      double max = -std::numeric_limits<double>::infinity();
      for (int64_t v = 0; v < vocab; v++) max = std::max(max, static_cast<double>(l[v]));
      double sum = 0;
      for (int64_t v = 0; v < vocab; v++) sum += std::exp(l[v] - max);
      for (int64_t v = 0; v < vocab; v++) p[v] = static_cast<float>(std::exp(l[v] - max) / sum);
      terms[row] = counts(targets, mask, row) ? max + std::log(sum) - l[targets[row]] : 0;
    }
  });
  double total = 0;
  int64_t counted = 0;
  for (int64_t row = 0; row < rows; row++) {
    if (!counts(targets, mask, row)) continue;
    total += terms[row];
    counted++;
  }
  return {counted == 0 ? std::numeric_limits<double>::quiet_NaN() : total / counted, counted};
}

void crossEntropyBackward(float* dLogits, const float* probs, const int32_t* targets, const float* mask, int64_t rows, int64_t vocab,
                          double dLoss) {
  int64_t counted = 0;
  for (int64_t row = 0; row < rows; row++) counted += counts(targets, mask, row);
  if (counted == 0) return;
  const double scale = dLoss / counted;
  parallelFor(rows, grainFor(vocab), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; row++) {
      if (!counts(targets, mask, row)) continue;
      float* d = dLogits + row * vocab;
      const float* p = probs + row * vocab;
      for (int64_t v = 0; v < vocab; v++) d[v] = static_cast<float>(d[v] + scale * p[v]);
      d[targets[row]] = static_cast<float>(d[targets[row]] - scale);
    }
  });
}

}  // namespace qalc
