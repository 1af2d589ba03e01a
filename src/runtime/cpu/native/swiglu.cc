// SwiGLU h = silu(gate) ⊙ up, forward and backward: twin of src/runtime/typescript/swiglu.ts, same
// double expressions (exp from the C library, V8's Math.exp may differ in the last bit of a
// double, which float32 rounding hides almost always). Split over element chunks.
#include <cmath>

#include "kernels.h"
#include "thread-pool.h"

namespace qalc {

void swigluForward(float* out, const float* gate, const float* up, int64_t count) {
  parallelFor(count, grainFor(16), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
      const double g = gate[i];
      out[i] = static_cast<float>((g / (1 + std::exp(-g))) * up[i]);
    }
  });
}

void swigluBackward(float* dGate, float* dUp, const float* dOut, const float* gate, const float* up, int64_t count) {
  parallelFor(count, grainFor(16), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
      const double g = gate[i];
      const double sigmoid = 1 / (1 + std::exp(-g));
      const double d = dOut[i];
      dGate[i] = static_cast<float>(dGate[i] + d * up[i] * sigmoid * (1 + g * (1 - sigmoid)));
      dUp[i] = static_cast<float>(dUp[i] + d * g * sigmoid);
    }
  });
}

}  // namespace qalc
