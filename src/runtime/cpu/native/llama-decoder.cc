// See llama-decoder.h. Matrix-vector products split over output rows through parallelFor;
// for a model as small as stories260K each one is below the pool's grain and runs inline.
#include "llama-decoder.h"

#include <cmath>

#include "kernels.h"

namespace qalc {
namespace {

// out may be x; eps is the model's, as in LlamaForward's rmsNorm.
void rmsNorm(float* out, const float* x, const float* weight, int n, double eps) {
  double ss = 0;
  for (int j = 0; j < n; j++) ss += static_cast<double>(x[j]) * x[j];
  const double scale = 1 / std::sqrt(ss / n + eps);
  for (int j = 0; j < n; j++) out[j] = static_cast<float>(weight[j] * (scale * x[j]));
}

// LlamaForward's softmax: float32 storage, the sum of the unrounded exponentials in double.
void softmax(float* x, int n) {
  float max = x[0];
  for (int i = 1; i < n; i++) if (x[i] > max) max = x[i];
  double sum = 0;
  for (int i = 0; i < n; i++) {
    const double e = std::exp(static_cast<double>(x[i]) - max);
    x[i] = static_cast<float>(e);
    sum += e;
  }
  for (int i = 0; i < n; i++) x[i] = static_cast<float>(x[i] / sum);
}

}  // namespace

LlamaDecoder::LlamaDecoder(const DecoderShape& shape, std::vector<float> tokenEmbedding, std::vector<DecoderLayerWeights> layers,
                           std::vector<float> rmsFinal, std::vector<float> classifier, std::vector<float> ropeCos,
                           std::vector<float> ropeSin)
    : shape_(shape),
      headSize_(shape.dim / shape.heads),
      kvDim_(shape.dim / shape.heads * shape.kvHeads),
      tokenEmbedding_(std::move(tokenEmbedding)),
      rmsFinal_(std::move(rmsFinal)),
      classifier_(std::move(classifier)),
      ropeCos_(std::move(ropeCos)),
      ropeSin_(std::move(ropeSin)),
      layers_(std::move(layers)),
      x_(shape.dim),
      xb_(shape.dim),
      xb2_(shape.dim),
      hb_(shape.hiddenDim),
      hb2_(shape.hiddenDim),
      q_(shape.dim),
      att_(static_cast<size_t>(shape.heads) * shape.context),
      keyCache_(static_cast<size_t>(shape.layers) * shape.context * kvDim_),
      valueCache_(static_cast<size_t>(shape.layers) * shape.context * kvDim_),
      headAcc_(headSize_) {}

void LlamaDecoder::forward(int token, int pos, float* logits) {
  const int dim = shape_.dim, hidden = shape_.hiddenDim, heads = shape_.heads, context = shape_.context;
  const int hs = headSize_, kvDim = kvDim_, kvMul = heads / shape_.kvHeads, pairs = hs / 2;
  const double attScale = 1 / std::sqrt(static_cast<double>(hs));
  float *x = x_.data(), *xb = xb_.data(), *xb2 = xb2_.data(), *hb = hb_.data(), *hb2 = hb2_.data(), *q = q_.data(), *att = att_.data();

  const float* embedding = tokenEmbedding_.data() + static_cast<size_t>(token) * dim;
  for (int i = 0; i < dim; i++) x[i] = embedding[i];

  for (int l = 0; l < shape_.layers; l++) {
    const DecoderLayerWeights& w = layers_[l];
    rmsNorm(xb, x, w.rmsAtt.data(), dim, shape_.rmsNormEps);

    const size_t layerOffset = static_cast<size_t>(l) * context * kvDim;
    float* kRow = keyCache_.data() + layerOffset + static_cast<size_t>(pos) * kvDim;
    float* vRow = valueCache_.data() + layerOffset + static_cast<size_t>(pos) * kvDim;
    matvecOutMajor(q, xb, w.wq.data(), dim, dim);
    matvecOutMajor(kRow, xb, w.wk.data(), dim, kvDim);
    matvecOutMajor(vRow, xb, w.wv.data(), dim, kvDim);

    const float* cos = ropeCos_.data() + static_cast<size_t>(pos) * pairs;
    const float* sin = ropeSin_.data() + static_cast<size_t>(pos) * pairs;
    for (int i = 0; i < dim; i += 2) {
      const int pair = (i % hs) / 2;
      const double c = cos[pair], s = sin[pair];
      const double q0 = q[i], q1 = q[i + 1];
      q[i] = static_cast<float>(q0 * c - q1 * s);
      q[i + 1] = static_cast<float>(q0 * s + q1 * c);
      if (i < kvDim) {
        const double k0 = kRow[i], k1 = kRow[i + 1];
        kRow[i] = static_cast<float>(k0 * c - k1 * s);
        kRow[i + 1] = static_cast<float>(k0 * s + k1 * c);
      }
    }

    for (int h = 0; h < heads; h++) {
      const float* qHead = q + h * hs;
      float* scores = att + static_cast<size_t>(h) * context;
      const float* kvHead = keyCache_.data() + layerOffset + (h / kvMul) * hs;
      for (int t = 0; t <= pos; t++) {
        const float* key = kvHead + static_cast<size_t>(t) * kvDim;
        double score = 0;
        for (int i = 0; i < hs; i++) score += static_cast<double>(qHead[i]) * key[i];
        scores[t] = static_cast<float>(score * attScale);
      }
      softmax(scores, pos + 1);
      double* acc = headAcc_.data();
      for (int i = 0; i < hs; i++) acc[i] = 0;
      const float* valueHead = valueCache_.data() + layerOffset + (h / kvMul) * hs;
      for (int t = 0; t <= pos; t++) {
        const double a = scores[t];
        const float* value = valueHead + static_cast<size_t>(t) * kvDim;
        for (int i = 0; i < hs; i++) acc[i] += a * value[i];
      }
      for (int i = 0; i < hs; i++) xb[h * hs + i] = static_cast<float>(acc[i]);
    }

    matvecOutMajor(xb2, xb, w.wo.data(), dim, dim);
    for (int i = 0; i < dim; i++) x[i] = static_cast<float>(static_cast<double>(x[i]) + xb2[i]);

    rmsNorm(xb, x, w.rmsFfn.data(), dim, shape_.rmsNormEps);
    matvecOutMajor(hb, xb, w.w1.data(), dim, hidden);
    matvecOutMajor(hb2, xb, w.w3.data(), dim, hidden);
    for (int i = 0; i < hidden; i++) {
      const double gate = hb[i];
      hb[i] = static_cast<float>((gate / (1 + std::exp(-gate))) * hb2[i]);
    }
    matvecOutMajor(xb, hb, w.w2.data(), hidden, dim);
    for (int i = 0; i < dim; i++) x[i] = static_cast<float>(static_cast<double>(x[i]) + xb[i]);
  }

  rmsNorm(x, x, rmsFinal_.data(), dim, shape_.rmsNormEps);
  matvecOutMajor(logits, x, classifier_.data(), dim, shape_.vocab);
}

}  // namespace qalc
