// One token at a time through a float32 LLaMA with a KV cache: the native twin of
// src/model/llama-forward.ts (itself a port of llama2.c run.c's forward()). The whole token
// runs in one call, so the JavaScript ↔ C++ crossing costs once per token, not once per op.
//
// Every step repeats LlamaForward's arithmetic in the same order (dot.h's matmul order,
// float64 sums, float32 stores, the same RoPE tables passed in from TypeScript), so logits
// match it bit for bit except where exp differs in the last bit of a double between V8 and the
// C library — which a float32 store hides almost always. The weights are copied in (the
// JavaScript arrays may move or be freed), [out, in] as llama2.c stores them.
#pragma once

#include <cstdint>
#include <vector>

namespace qalc {

struct DecoderShape {
  int dim, hiddenDim, layers, heads, kvHeads, vocab, context;
  double rmsNormEps;  // the model's ε (θ is in the RoPE tables)
};

struct DecoderLayerWeights {
  std::vector<float> rmsAtt, wq, wk, wv, wo, rmsFfn, w1, w2, w3;
};

class LlamaDecoder {
 public:
  LlamaDecoder(const DecoderShape& shape, std::vector<float> tokenEmbedding, std::vector<DecoderLayerWeights> layers,
               std::vector<float> rmsFinal, std::vector<float> classifier, std::vector<float> ropeCos, std::vector<float> ropeSin);

  const DecoderShape& shape() const { return shape_; }

  /** Runs `token` at position `pos` (0, 1, 2, … in order) and writes vocab logits. */
  void forward(int token, int pos, float* logits);

 private:
  DecoderShape shape_;
  int headSize_, kvDim_;
  std::vector<float> tokenEmbedding_, rmsFinal_, classifier_, ropeCos_, ropeSin_;
  std::vector<DecoderLayerWeights> layers_;
  std::vector<float> x_, xb_, xb2_, hb_, hb2_, q_, att_, keyCache_, valueCache_;
  std::vector<double> headAcc_;
};

}  // namespace qalc
