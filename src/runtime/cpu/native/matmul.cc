// Dense products over float32 weights stored [out, in] (llama2.c, nn.Linear): the decode's
// matrix-vector product and the tied lm_head forward and backward. Twins of LlamaForward's
// matmul and src/runtime/typescript/lm-head.ts.
//
// matvecOutMajor sums in dot.h's order, which is LlamaForward's: bit-identical outputs.
// lmHeadForward uses the same four-lane order where lm-head.ts sums sequentially, so logits
// agree to float32 rounding. Split: over output rows (matvec), input rows (lm_head).
#include <algorithm>
#include <vector>

#include "dot.h"
#include "kernels.h"
#include "thread-pool.h"

namespace qalc {

void matvecOutMajor(float* y, const float* x, const float* w, int64_t inFeatures, int64_t outFeatures) {
  parallelFor(outFeatures, grainFor(inFeatures), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) y[i] = static_cast<float>(dotF32(w + i * inFeatures, x, inFeatures));
  });
}

void lmHeadForward(float* logits, const float* x, const float* classifier, int64_t rows, int64_t channels, int64_t vocab) {
  parallelFor(rows, grainFor(channels * vocab), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; row++) {
      const float* xRow = x + row * channels;
      float* out = logits + row * vocab;
      for (int64_t v = 0; v < vocab; v++) out[v] = static_cast<float>(dotF32(xRow, classifier + v * channels, channels));
    }
  });
}

void lmHeadBackward(float* dx, const float* dLogits, const float* classifier, int64_t rows, int64_t channels, int64_t vocab) {
  parallelFor(rows, grainFor(channels * vocab), [&](int64_t begin, int64_t end) {
    std::vector<double> acc(channels);
    for (int64_t row = begin; row < end; row++) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t v = 0; v < vocab; v++) {
        const double d = dLogits[row * vocab + v];
        if (d == 0) continue;
        const float* __restrict e = classifier + v * channels;
        for (int64_t c = 0; c < channels; c++) acc[c] += d * e[c];
      }
      float* dxRow = dx + row * channels;
      for (int64_t c = 0; c < channels; c++) dxRow[c] = static_cast<float>(dxRow[c] + acc[c]);
    }
  });
}

}  // namespace qalc
