// The N-API surface of qalc_cpu.node: converts JavaScript arguments to the plain structs of
// kernels.h, checking every array's type and length first (a wrong length would otherwise be
// a write past the end of a buffer), then calls the kernel on the caller's memory — nothing is
// copied except the decoder's weights. The typed wrappers live in ../addon.ts.
#include <napi.h>

#include <cmath>
#include <string>

#include "kernels.h"
#include "llama-decoder.h"
#include "thread-pool.h"

namespace qalc {
namespace {

template <typename T>
struct ArrayTraits;
template <>
struct ArrayTraits<float> {
  static constexpr napi_typedarray_type type = napi_float32_array;
  static constexpr const char* name = "Float32Array";
};
template <>
struct ArrayTraits<double> {
  static constexpr napi_typedarray_type type = napi_float64_array;
  static constexpr const char* name = "Float64Array";
};
template <>
struct ArrayTraits<uint8_t> {
  static constexpr napi_typedarray_type type = napi_uint8_array;
  static constexpr const char* name = "Uint8Array";
};
template <>
struct ArrayTraits<int32_t> {
  static constexpr napi_typedarray_type type = napi_int32_array;
  static constexpr const char* name = "Int32Array";
};

/** The data of a typed array of element type T and exactly `length` elements; throws otherwise. */
template <typename T>
T* arrayOf(Napi::Env env, Napi::Value value, const std::string& name, int64_t length) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != ArrayTraits<T>::type) {
    throw Napi::TypeError::New(env, name + " must be a " + ArrayTraits<T>::name);
  }
  auto array = value.As<Napi::TypedArrayOf<T>>();
  if (static_cast<int64_t>(array.ElementLength()) != length) {
    throw Napi::RangeError::New(env, name + " has " + std::to_string(array.ElementLength()) + " elements, expected " + std::to_string(length));
  }
  return array.Data();
}

/** Like arrayOf, or nullptr when the value is undefined or null. */
template <typename T>
T* optionalArrayOf(Napi::Env env, Napi::Value value, const std::string& name, int64_t length) {
  if (value.IsUndefined() || value.IsNull()) return nullptr;
  return arrayOf<T>(env, value, name, length);
}

int64_t integerOf(Napi::Env env, Napi::Value value, const std::string& name, int64_t min = 0) {
  if (!value.IsNumber()) throw Napi::TypeError::New(env, name + " must be a number");
  double number = value.As<Napi::Number>().DoubleValue();
  if (!(number >= static_cast<double>(min) && number <= 9007199254740991.0 && number == static_cast<double>(static_cast<int64_t>(number)))) {
    throw Napi::RangeError::New(env, name + " must be an integer ≥ " + std::to_string(min) + ", got " + value.ToString().Utf8Value());
  }
  return static_cast<int64_t>(number);
}

double numberOf(Napi::Env env, Napi::Value value, const std::string& name) {
  if (!value.IsNumber()) throw Napi::TypeError::New(env, name + " must be a number");
  return value.As<Napi::Number>().DoubleValue();
}

// ---- thread pool ----

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  ThreadPool::global().setThreads(static_cast<int>(integerOf(info.Env(), info[0], "threads", 1)));
  return info.Env().Undefined();
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ThreadPool::global().threads()); }

Napi::Value SetMinChunkWork(const Napi::CallbackInfo& info) {
  setMinChunkWork(integerOf(info.Env(), info[0], "work", 1));
  return info.Env().Undefined();
}

Napi::Value GetMinChunkWork(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(minChunkWork())); }

// ---- QA-LoRA linear ----

LinearLayer linearLayerOf(Napi::Env env, Napi::Value value, int64_t rows) {
  if (!value.IsObject()) throw Napi::TypeError::New(env, "layer must be an object");
  Napi::Object o = value.As<Napi::Object>();
  LinearLayer layer{};
  const int64_t K = integerOf(env, o.Get("inFeatures"), "layer.inFeatures", 1);
  const int64_t N = integerOf(env, o.Get("outFeatures"), "layer.outFeatures", 1);
  layer.inFeatures = static_cast<int>(K);
  layer.outFeatures = static_cast<int>(N);
  Napi::Value q = o.Get("q");
  if (!q.IsUndefined()) {
    const int64_t g = integerOf(env, o.Get("quantGroup"), "layer.quantGroup", 1);
    if (K % g != 0) throw Napi::RangeError::New(env, "quantization group size does not divide in_features");
    layer.quantGroup = static_cast<int>(g);
    layer.q = arrayOf<uint8_t>(env, q, "layer.q", K * N);
    layer.qT = arrayOf<uint8_t>(env, o.Get("qT"), "layer.qT", N * K);
    layer.scales = arrayOf<double>(env, o.Get("scales"), "layer.scales", (K / g) * N);
    layer.zeros = arrayOf<double>(env, o.Get("zeros"), "layer.zeros", (K / g) * N);
  } else {
    layer.dense = arrayOf<float>(env, o.Get("dense"), "layer.dense", K * N);
  }
  const int64_t rank = integerOf(env, o.Get("rank"), "layer.rank", 0);
  layer.rank = static_cast<int>(rank);
  if (rank == 0) return layer;
  const int64_t g = integerOf(env, o.Get("adapterGroup"), "layer.adapterGroup", 1);
  if (K % g != 0) throw Napi::RangeError::New(env, "adapter group size does not divide in_features");
  const int64_t groups = K / g;
  layer.adapterGroup = static_cast<int>(g);
  layer.poolFactor = numberOf(env, o.Get("poolFactor"), "layer.poolFactor");
  layer.scaling = numberOf(env, o.Get("scaling"), "layer.scaling");
  layer.dropout = numberOf(env, o.Get("dropout"), "layer.dropout");
  layer.a = arrayOf<float>(env, o.Get("a"), "layer.a", groups * rank);
  layer.b = arrayOf<float>(env, o.Get("b"), "layer.b", rank * N);
  layer.gradA = arrayOf<float>(env, o.Get("gradA"), "layer.gradA", groups * rank);
  layer.gradB = arrayOf<float>(env, o.Get("gradB"), "layer.gradB", rank * N);
  layer.u = arrayOf<float>(env, o.Get("u"), "saved.u", rows * groups);
  layer.v = arrayOf<float>(env, o.Get("v"), "saved.v", rows * rank);
  layer.mask = optionalArrayOf<uint8_t>(env, o.Get("mask"), "saved.mask", rows * groups);
  return layer;
}

// (y, x, rows, layer)
Napi::Value QaloraLinearForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t rows = integerOf(env, info[2], "rows");
  LinearLayer layer = linearLayerOf(env, info[3], rows);
  float* y = arrayOf<float>(env, info[0], "y", rows * layer.outFeatures);
  const float* x = arrayOf<float>(env, info[1], "x", rows * layer.inFeatures);
  qaloraLinearForward(y, x, rows, layer);
  return env.Undefined();
}

// (dx, dy, rows, layer)
Napi::Value QaloraLinearBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t rows = integerOf(env, info[2], "rows");
  LinearLayer layer = linearLayerOf(env, info[3], rows);
  float* dx = arrayOf<float>(env, info[0], "dx", rows * layer.inFeatures);
  const float* dy = arrayOf<float>(env, info[1], "dy", rows * layer.outFeatures);
  qaloraLinearBackward(dx, dy, rows, layer);
  return env.Undefined();
}

// ---- dense ----

// (y, x, w, inFeatures, outFeatures)
Napi::Value MatvecOutMajor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t in = integerOf(env, info[3], "inFeatures", 1), out = integerOf(env, info[4], "outFeatures", 1);
  matvecOutMajor(arrayOf<float>(env, info[0], "y", out), arrayOf<float>(env, info[1], "x", in), arrayOf<float>(env, info[2], "w", in * out),
                 in, out);
  return env.Undefined();
}

// (logits, x, classifier, rows, channels, vocab)
Napi::Value LmHeadForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t rows = integerOf(env, info[3], "rows"), C = integerOf(env, info[4], "channels", 1), V = integerOf(env, info[5], "vocab", 1);
  lmHeadForward(arrayOf<float>(env, info[0], "logits", rows * V), arrayOf<float>(env, info[1], "x", rows * C),
                arrayOf<float>(env, info[2], "classifier", V * C), rows, C, V);
  return env.Undefined();
}

// (dx, dLogits, classifier, rows, channels, vocab)
Napi::Value LmHeadBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t rows = integerOf(env, info[3], "rows"), C = integerOf(env, info[4], "channels", 1), V = integerOf(env, info[5], "vocab", 1);
  lmHeadBackward(arrayOf<float>(env, info[0], "dx", rows * C), arrayOf<float>(env, info[1], "dLogits", rows * V),
                 arrayOf<float>(env, info[2], "classifier", V * C), rows, C, V);
  return env.Undefined();
}

// ---- attention ----

AttentionShape attentionShapeOf(const Napi::CallbackInfo& info, size_t first) {
  Napi::Env env = info.Env();
  AttentionShape shape{};
  shape.batch = static_cast<int>(integerOf(env, info[first], "batch"));
  shape.seqLen = static_cast<int>(integerOf(env, info[first + 1], "seqLen"));
  shape.heads = static_cast<int>(integerOf(env, info[first + 2], "heads", 1));
  shape.kvHeads = static_cast<int>(integerOf(env, info[first + 3], "kvHeads", 1));
  shape.headSize = static_cast<int>(integerOf(env, info[first + 4], "headSize", 1));
  if (shape.heads % shape.kvHeads != 0) {
    throw Napi::RangeError::New(env, "heads " + std::to_string(shape.heads) + " is not a multiple of kv heads " + std::to_string(shape.kvHeads));
  }
  return shape;
}

// (out, probs, q, k, v, batch, seqLen, heads, kvHeads, headSize)
Napi::Value AttentionForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AttentionShape s = attentionShapeOf(info, 5);
  const int64_t rows = static_cast<int64_t>(s.batch) * s.seqLen, qw = s.heads * s.headSize, kvw = s.kvHeads * s.headSize;
  attentionForward(arrayOf<float>(env, info[0], "out", rows * qw), arrayOf<float>(env, info[1], "probs", rows * s.heads * s.seqLen),
                   arrayOf<float>(env, info[2], "q", rows * qw), arrayOf<float>(env, info[3], "k", rows * kvw),
                   arrayOf<float>(env, info[4], "v", rows * kvw), s);
  return env.Undefined();
}

// (dq, dk, dv, dOut, q, k, v, probs, batch, seqLen, heads, kvHeads, headSize)
Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AttentionShape s = attentionShapeOf(info, 8);
  const int64_t rows = static_cast<int64_t>(s.batch) * s.seqLen, qw = s.heads * s.headSize, kvw = s.kvHeads * s.headSize;
  attentionBackward(arrayOf<float>(env, info[0], "dq", rows * qw), arrayOf<float>(env, info[1], "dk", rows * kvw),
                    arrayOf<float>(env, info[2], "dv", rows * kvw), arrayOf<float>(env, info[3], "dOut", rows * qw),
                    arrayOf<float>(env, info[4], "q", rows * qw), arrayOf<float>(env, info[5], "k", rows * kvw),
                    arrayOf<float>(env, info[6], "v", rows * kvw), arrayOf<float>(env, info[7], "probs", rows * s.heads * s.seqLen), s);
  return env.Undefined();
}

// ---- rmsnorm, rope, swiglu ----

// (out, rstd, x, weight, rows, channels, eps)
Napi::Value RmsnormForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t rows = integerOf(env, info[4], "rows"), C = integerOf(env, info[5], "channels", 1);
  rmsnormForward(arrayOf<float>(env, info[0], "out", rows * C), arrayOf<float>(env, info[1], "rstd", rows),
                 arrayOf<float>(env, info[2], "x", rows * C), arrayOf<float>(env, info[3], "weight", C), rows, C, numberOf(env, info[6], "eps"));
  return env.Undefined();
}

// (dx, dy, x, weight, rstd, rows, channels)
Napi::Value RmsnormBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t rows = integerOf(env, info[5], "rows"), C = integerOf(env, info[6], "channels", 1);
  rmsnormBackward(arrayOf<float>(env, info[0], "dx", rows * C), arrayOf<float>(env, info[1], "dy", rows * C),
                  arrayOf<float>(env, info[2], "x", rows * C), arrayOf<float>(env, info[3], "weight", C), arrayOf<float>(env, info[4], "rstd", rows),
                  rows, C);
  return env.Undefined();
}

// (x, cos, sin, positions, batch, seqLen, width, headSize, direction)
Napi::Value RopeRotate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t positions = integerOf(env, info[3], "positions"), batch = integerOf(env, info[4], "batch");
  const int64_t seqLen = integerOf(env, info[5], "seqLen"), width = integerOf(env, info[6], "width", 1);
  const int64_t headSize = integerOf(env, info[7], "headSize", 2);
  if (headSize % 2 != 0 || width % headSize != 0) throw Napi::RangeError::New(env, "width must be a multiple of an even head size");
  if (seqLen > positions) throw Napi::RangeError::New(env, "sequence length exceeds the RoPE tables' positions");
  const int direction = numberOf(env, info[8], "direction") < 0 ? -1 : 1;
  ropeRotate(arrayOf<float>(env, info[0], "x", batch * seqLen * width), arrayOf<float>(env, info[1], "cos", positions * headSize / 2),
             arrayOf<float>(env, info[2], "sin", positions * headSize / 2), batch, seqLen, width, headSize, direction);
  return env.Undefined();
}

// (out, gate, up, count)
Napi::Value SwigluForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t n = integerOf(env, info[3], "count");
  swigluForward(arrayOf<float>(env, info[0], "out", n), arrayOf<float>(env, info[1], "gate", n), arrayOf<float>(env, info[2], "up", n), n);
  return env.Undefined();
}

// (dGate, dUp, dOut, gate, up, count)
Napi::Value SwigluBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t n = integerOf(env, info[5], "count");
  swigluBackward(arrayOf<float>(env, info[0], "dGate", n), arrayOf<float>(env, info[1], "dUp", n), arrayOf<float>(env, info[2], "dOut", n),
                 arrayOf<float>(env, info[3], "gate", n), arrayOf<float>(env, info[4], "up", n), n);
  return env.Undefined();
}

// ---- cross-entropy ----

// (probs, logits, targets, mask | undefined, rows, vocab) → { loss, counted }
Napi::Value CrossEntropyForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t rows = integerOf(env, info[4], "rows"), V = integerOf(env, info[5], "vocab", 1);
  const int32_t* targets = arrayOf<int32_t>(env, info[2], "targets", rows);
  for (int64_t row = 0; row < rows; row++) {
    if (targets[row] >= V) {
      throw Napi::RangeError::New(env, "target " + std::to_string(targets[row]) + " at row " + std::to_string(row) +
                                           " is outside the vocabulary of " + std::to_string(V));
    }
  }
  CrossEntropyResult result = crossEntropyForward(arrayOf<float>(env, info[0], "probs", rows * V), arrayOf<float>(env, info[1], "logits", rows * V),
                                                  targets, optionalArrayOf<float>(env, info[3], "mask", rows), rows, V);
  Napi::Object out = Napi::Object::New(env);
  out.Set("loss", result.loss);
  out.Set("counted", static_cast<double>(result.counted));
  return out;
}

// (dLogits, probs, targets, mask | undefined, rows, vocab, dLoss)
Napi::Value CrossEntropyBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t rows = integerOf(env, info[4], "rows"), V = integerOf(env, info[5], "vocab", 1);
  const int32_t* targets = arrayOf<int32_t>(env, info[2], "targets", rows);
  for (int64_t row = 0; row < rows; row++) {
    if (targets[row] >= V) throw Napi::RangeError::New(env, "target outside the vocabulary");
  }
  crossEntropyBackward(arrayOf<float>(env, info[0], "dLogits", rows * V), arrayOf<float>(env, info[1], "probs", rows * V), targets,
                       optionalArrayOf<float>(env, info[3], "mask", rows), rows, V, numberOf(env, info[6], "dLoss"));
  return env.Undefined();
}

// ---- decoder ----

std::vector<float> copyOf(Napi::Env env, Napi::Value value, const std::string& name, int64_t length) {
  const float* data = arrayOf<float>(env, value, name, length);
  return std::vector<float>(data, data + length);
}

class Decoder : public Napi::ObjectWrap<Decoder> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Decoder", {InstanceMethod<&Decoder::Forward>("forward")});
  }

  // (shape {dim, hiddenDim, layers, heads, kvHeads, vocab, context, rmsNormEps}, tokenEmbedding,
  //  layers [{rmsAtt, wq, wk, wv, wo, rmsFfn, w1, w2, w3}], rmsFinal, classifier, ropeCos, ropeSin)
  explicit Decoder(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Decoder>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) throw Napi::TypeError::New(env, "shape must be an object");
    Napi::Object s = info[0].As<Napi::Object>();
    DecoderShape shape{};
    shape.dim = static_cast<int>(integerOf(env, s.Get("dim"), "dim", 1));
    shape.hiddenDim = static_cast<int>(integerOf(env, s.Get("hiddenDim"), "hiddenDim", 1));
    shape.layers = static_cast<int>(integerOf(env, s.Get("layers"), "layers", 1));
    shape.heads = static_cast<int>(integerOf(env, s.Get("heads"), "heads", 1));
    shape.kvHeads = static_cast<int>(integerOf(env, s.Get("kvHeads"), "kvHeads", 1));
    shape.vocab = static_cast<int>(integerOf(env, s.Get("vocab"), "vocab", 1));
    shape.context = static_cast<int>(integerOf(env, s.Get("context"), "context", 1));
    shape.rmsNormEps = numberOf(env, s.Get("rmsNormEps"), "rmsNormEps");
    if (!(shape.rmsNormEps > 0 && std::isfinite(shape.rmsNormEps))) throw Napi::RangeError::New(env, "rmsNormEps must be a positive number");
    if (shape.dim % shape.heads != 0 || shape.heads % shape.kvHeads != 0 || (shape.dim / shape.heads) % 2 != 0) {
      throw Napi::RangeError::New(env, "dim, heads and kvHeads do not make whole, even heads");
    }
    const int64_t dim = shape.dim, hidden = shape.hiddenDim, kvDim = dim / shape.heads * shape.kvHeads;
    if (!info[2].IsArray() || info[2].As<Napi::Array>().Length() != static_cast<uint32_t>(shape.layers)) {
      throw Napi::TypeError::New(env, "layers must be an array of " + std::to_string(shape.layers) + " layer weights");
    }
    Napi::Array layerArray = info[2].As<Napi::Array>();
    std::vector<DecoderLayerWeights> layers(shape.layers);
    for (int l = 0; l < shape.layers; l++) {
      Napi::Object w = layerArray.Get(static_cast<uint32_t>(l)).As<Napi::Object>();
      const std::string p = "layers." + std::to_string(l) + ".";
      layers[l] = {copyOf(env, w.Get("rmsAtt"), p + "rmsAtt", dim), copyOf(env, w.Get("wq"), p + "wq", dim * dim),
                   copyOf(env, w.Get("wk"), p + "wk", kvDim * dim),    copyOf(env, w.Get("wv"), p + "wv", kvDim * dim),
                   copyOf(env, w.Get("wo"), p + "wo", dim * dim),      copyOf(env, w.Get("rmsFfn"), p + "rmsFfn", dim),
                   copyOf(env, w.Get("w1"), p + "w1", hidden * dim),   copyOf(env, w.Get("w2"), p + "w2", dim * hidden),
                   copyOf(env, w.Get("w3"), p + "w3", hidden * dim)};
    }
    const int64_t ropeLength = static_cast<int64_t>(shape.context) * (dim / shape.heads / 2);
    decoder_ = std::make_unique<LlamaDecoder>(shape, copyOf(env, info[1], "tokenEmbedding", shape.vocab * dim), std::move(layers),
                                              copyOf(env, info[3], "rmsFinal", dim), copyOf(env, info[4], "classifier", shape.vocab * dim),
                                              copyOf(env, info[5], "ropeCos", ropeLength), copyOf(env, info[6], "ropeSin", ropeLength));
  }

 private:
  // (token, pos, logits)
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const DecoderShape& shape = decoder_->shape();
    const int64_t token = integerOf(env, info[0], "token"), pos = integerOf(env, info[1], "pos");
    if (token >= shape.vocab) throw Napi::RangeError::New(env, "token " + std::to_string(token) + " is outside the vocabulary of " + std::to_string(shape.vocab));
    if (pos >= shape.context) throw Napi::RangeError::New(env, "position " + std::to_string(pos) + " is outside the context of " + std::to_string(shape.context));
    decoder_->forward(static_cast<int>(token), static_cast<int>(pos), arrayOf<float>(env, info[2], "logits", shape.vocab));
    return env.Undefined();
  }

  std::unique_ptr<LlamaDecoder> decoder_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("setThreads", Napi::Function::New<SetThreads>(env));
  exports.Set("threads", Napi::Function::New<GetThreads>(env));
  exports.Set("setMinChunkWork", Napi::Function::New<SetMinChunkWork>(env));
  exports.Set("minChunkWork", Napi::Function::New<GetMinChunkWork>(env));
  exports.Set("qaloraLinearForward", Napi::Function::New<QaloraLinearForward>(env));
  exports.Set("qaloraLinearBackward", Napi::Function::New<QaloraLinearBackward>(env));
  exports.Set("matvecOutMajor", Napi::Function::New<MatvecOutMajor>(env));
  exports.Set("lmHeadForward", Napi::Function::New<LmHeadForward>(env));
  exports.Set("lmHeadBackward", Napi::Function::New<LmHeadBackward>(env));
  exports.Set("attentionForward", Napi::Function::New<AttentionForward>(env));
  exports.Set("attentionBackward", Napi::Function::New<AttentionBackward>(env));
  exports.Set("rmsnormForward", Napi::Function::New<RmsnormForward>(env));
  exports.Set("rmsnormBackward", Napi::Function::New<RmsnormBackward>(env));
  exports.Set("ropeRotate", Napi::Function::New<RopeRotate>(env));
  exports.Set("swigluForward", Napi::Function::New<SwigluForward>(env));
  exports.Set("swigluBackward", Napi::Function::New<SwigluBackward>(env));
  exports.Set("crossEntropyForward", Napi::Function::New<CrossEntropyForward>(env));
  exports.Set("crossEntropyBackward", Napi::Function::New<CrossEntropyBackward>(env));
  exports.Set("Decoder", Decoder::Define(env));
  return exports;
}

}  // namespace
}  // namespace qalc

static Napi::Object InitQalcCpu(Napi::Env env, Napi::Object exports) { return qalc::Init(env, exports); }

NODE_API_MODULE(qalc_cpu, InitQalcCpu)
