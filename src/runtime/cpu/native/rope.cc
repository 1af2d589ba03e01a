// Rotary position embedding on [batch, seqLen, width] in place, forward (+1) or backward (−1,
// the transposed rotation): twin of src/runtime/typescript/rope.ts, with the cos/sin tables it builds
// (run.c's float32 steps) passed in. Element-wise, bit-identical. Split over (b, t) rows.
#include "kernels.h"
#include "thread-pool.h"

namespace qalc {

void ropeRotate(float* x, const float* cos, const float* sin, int64_t batch, int64_t seqLen, int64_t width, int64_t headSize, int direction) {
  const int64_t pairs = headSize / 2;
  parallelFor(batch * seqLen, grainFor(2 * width), [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; n++) {
      const int64_t t = n % seqLen;
      float* row = x + n * width;
      const float* c = cos + t * pairs;
      const float* s = sin + t * pairs;
      for (int64_t i = 0; i < width; i += 2) {
        const int64_t pair = (i % headSize) / 2;
        const double cs = c[pair];
        const double sn = direction * static_cast<double>(s[pair]);
        const double x0 = row[i], x1 = row[i + 1];
        row[i] = static_cast<float>(x0 * cs - x1 * sn);
        row[i + 1] = static_cast<float>(x0 * sn + x1 * cs);
      }
    }
  });
}

}  // namespace qalc
