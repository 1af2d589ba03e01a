// Causal grouped-query self-attention over a batch [B, T], forward and backward: twin of
// src/runtime/typescript/attention.ts (its header has the math). Query head h reads key/value head
// ⌊h / (H/KVH)⌋; probs [B, H, T, T] is saved for the backward.
//
// Split: the forward over (b, h); the backward over (b, kv head), because every query head
// of a group adds into the same dk and dv — one item owns them and sums its heads in order,
// in double, adding to the float32 gradients once. The TypeScript op adds into the float32
// arrays term by term, so gradients agree to float32 rounding; the forward matches its order.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels.h"
#include "thread-pool.h"

namespace qalc {

void attentionForward(float* out, float* probs, const float* q, const float* k, const float* v, const AttentionShape& shape) {
  const int64_t B = shape.batch, T = shape.seqLen, H = shape.heads, hs = shape.headSize;
  const int64_t qWidth = H * hs, kvWidth = shape.kvHeads * hs, group = H / shape.kvHeads;
  const double scale = 1 / std::sqrt(static_cast<double>(hs));
  parallelFor(B * H, grainFor(T * T * hs), [&](int64_t begin, int64_t end) {
    std::vector<double> scores(T), acc(hs);
    for (int64_t bh = begin; bh < end; bh++) {
      const int64_t b = bh / H, h = bh % H;
      const int64_t kvHead = (h / group) * hs;
      for (int64_t t = 0; t < T; t++) {
        const float* qRow = q + (b * T + t) * qWidth + h * hs;
        double max = -std::numeric_limits<double>::infinity();
        for (int64_t s = 0; s <= t; s++) {
          const float* kRow = k + (b * T + s) * kvWidth + kvHead;
          double dot = 0;
          for (int64_t i = 0; i < hs; i++) dot += static_cast<double>(qRow[i]) * kRow[i];
          scores[s] = dot * scale;
          max = std::max(max, scores[s]);
        }
        double sum = 0;
        for (int64_t s = 0; s <= t; s++) {
          scores[s] = std::exp(scores[s] - max);
          sum += scores[s];
        }
        float* pRow = probs + ((b * H + h) * T + t) * T;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t s = 0; s <= t; s++) {
          const double p = scores[s] / sum;
          pRow[s] = static_cast<float>(p);
          const float* vRow = v + (b * T + s) * kvWidth + kvHead;
          for (int64_t i = 0; i < hs; i++) acc[i] += p * vRow[i];
        }
        for (int64_t s = t + 1; s < T; s++) pRow[s] = 0;
        float* outRow = out + (b * T + t) * qWidth + h * hs;
        for (int64_t i = 0; i < hs; i++) outRow[i] = static_cast<float>(acc[i]);
      }
    }
  });
}

void attentionBackward(float* dq, float* dk, float* dv, const float* dOut, const float* q, const float* k, const float* v,
                       const float* probs, const AttentionShape& shape) {
  const int64_t B = shape.batch, T = shape.seqLen, H = shape.heads, KVH = shape.kvHeads, hs = shape.headSize;
  const int64_t qWidth = H * hs, kvWidth = KVH * hs, group = H / KVH;
  const double scale = 1 / std::sqrt(static_cast<double>(hs));
  parallelFor(B * KVH, grainFor(2 * group * T * T * hs), [&](int64_t begin, int64_t end) {
    std::vector<double> dScores(T), dqAcc(hs), dkAcc(T * hs), dvAcc(T * hs);
    for (int64_t bk = begin; bk < end; bk++) {
      const int64_t b = bk / KVH, kvHead = (bk % KVH) * hs;
      std::fill(dkAcc.begin(), dkAcc.end(), 0.0);
      std::fill(dvAcc.begin(), dvAcc.end(), 0.0);
      for (int64_t h = (bk % KVH) * group; h < (bk % KVH + 1) * group; h++) {
        for (int64_t t = 0; t < T; t++) {
          const float* qRow = q + (b * T + t) * qWidth + h * hs;
          const float* dOutRow = dOut + (b * T + t) * qWidth + h * hs;
          const float* pRow = probs + ((b * H + h) * T + t) * T;
          double weighted = 0;
          for (int64_t s = 0; s <= t; s++) {
            const float* vRow = v + (b * T + s) * kvWidth + kvHead;
            const double p = pRow[s];
            double dp = 0;
            for (int64_t i = 0; i < hs; i++) {
              dp += static_cast<double>(dOutRow[i]) * vRow[i];
              dvAcc[s * hs + i] += p * dOutRow[i];
            }
            dScores[s] = dp;
            weighted += p * dp;
          }
          std::fill(dqAcc.begin(), dqAcc.end(), 0.0);
          for (int64_t s = 0; s <= t; s++) {
            const double ds = pRow[s] * (dScores[s] - weighted) * scale;
            if (ds == 0) continue;
            const float* kRow = k + (b * T + s) * kvWidth + kvHead;
            for (int64_t i = 0; i < hs; i++) {
              dqAcc[i] += ds * kRow[i];
              dkAcc[s * hs + i] += ds * qRow[i];
            }
          }
          float* dqRow = dq + (b * T + t) * qWidth + h * hs;
          for (int64_t i = 0; i < hs; i++) dqRow[i] = static_cast<float>(dqRow[i] + dqAcc[i]);
        }
      }
      for (int64_t s = 0; s < T; s++) {
        float* dkRow = dk + (b * T + s) * kvWidth + kvHead;
        float* dvRow = dv + (b * T + s) * kvWidth + kvHead;
        for (int64_t i = 0; i < hs; i++) {
          dkRow[i] = static_cast<float>(dkRow[i] + dkAcc[s * hs + i]);
          dvRow[i] = static_cast<float>(dvRow[i] + dvAcc[s * hs + i]);
        }
      }
    }
  });
}

}  // namespace qalc
