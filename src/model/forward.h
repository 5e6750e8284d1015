// Inference forward pass: batched prefill and KV-cached decode share one code path, the layer
// forward of model/layer.h (the one the training engine runs too), then rmsnorm + lm_head.
// The layer range is explicit so that early exits (a head reading layer l's output) and
// per-layer sensitivity profiling (one layer run alone, with candidate weights) reuse it.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/attention.h"
#include "kernels/rope.h"
#include "model/layer.h"
#include "model/lora.h"
#include "model/model.h"

namespace edgellm {

// Keys/values of every layer for positions [0, len): [L, max_seq, KV*HD] each.
struct KVCache {
  int64_t max_seq = 0;
  int64_t kv_dim = 0;
  int64_t len = 0;  // positions filled
  std::vector<float> k, v;
  void init(const ModelConfig& c, int64_t max_seq);
  float* k_at(int l, int64_t pos) { return k.data() + (l * max_seq + pos) * kv_dim; }
  float* v_at(int l, int64_t pos) { return v.data() + (l * max_seq + pos) * kv_dim; }
};

class InferenceState {
 public:
  // max_seq: longest sequence this state will hold; the KV cache is sized for it up front.
  // Default: the model's context, capped at 4096 (a 128k-context model would otherwise reserve
  // gigabytes of cache nobody asked for).
  explicit InferenceState(const Model& m, int64_t max_seq = 0);

  // Runs T tokens at positions len..len+T-1 through all layers, appends their keys/values to the
  // cache, and returns the final-normed hidden states [T, C] (valid until the next call).
  const float* forward(const int32_t* tokens, int64_t T);
  // logits[n, V] = lm_head · hidden[n, C]
  void logits(const float* hidden, int64_t n, float* out) const;
  // forward() for early exits (voting): runs layers up to the deepest of `depths` only, appends
  // their keys/values, and returns the residual stream after each depth, [E, T, C] (raw, before
  // an exit head's norm; valid until the next call). One trunk serves every exit: each extra
  // exit costs a head, not a forward. Layers above the deepest exit are not run and their cache
  // rows not written, so a state is used with one set of depths.
  const float* forward_exits(const int32_t* tokens, int64_t T, const std::vector<int>& depths);
  // Convenience: forward, then logits of the last token only ([V], valid until next call).
  const float* forward_last_logits(const int32_t* tokens, int64_t T);

  // Applies `a` unmerged (y += scale·B·A·x after each adapted linear) until reset to nullptr.
  // The adapter must outlive its use and match the model's shape.
  void set_adapter(const LoraAdapters* a);
  const LoraAdapters* adapter() const { return lora_; }

  // Installs an observer of every layer forward (model/layer.h taps) until reset to nullptr. It
  // does not change any value the forward computes.
  void set_taps(LayerTaps* t) { taps_ = t; }
  LayerTaps* taps() const { return taps_; }

  void reset() { cache_.len = 0; }
  // Forgets positions >= len, keeping the cached keys/values of [0, len): a position's keys and
  // values depend only on the tokens up to it, so a shared prompt prefix is computed once and
  // each continuation is run from there (MMLU's few-shot prefix).
  void truncate(int64_t len);
  int64_t pos() const { return cache_.len; }
  int64_t max_seq() const { return cache_.max_seq; }
  const Model& model() const { return m_; }

  // Lower-level pieces of forward(), for early exits and per-layer profiling. None of them
  // moves pos(): the caller owns the positions it runs at, and forward() alone appends.
  void embed(const int32_t* tokens, int64_t T, float* x) const;  // x[T, C]
  // Layer l on x[T, C] in place at positions pos0..pos0+T-1, writing layer l's cache rows there.
  // `w` replaces the model's weights of layer l for this call (e.g. a compressed candidate).
  void layer_forward(int l, float* x, int64_t T, int64_t pos0, const LayerWeights* w = nullptr);
  // Layers [l0, l1) in turn: x enters layer l0 and leaves as layer l1 - 1's output.
  void forward_layers(float* x, int64_t T, int64_t pos0, int l0, int l1);
  void final_norm(const float* x, float* out, int64_t T) const;  // out[T, C]
  // Exit head on any hidden state: logits[T, V] = lm_head · final_norm(x[T, C]).
  void head_logits(const float* x, int64_t T, float* logits);

 private:
  void reserve(int64_t T);
  const Model& m_;
  KVCache cache_;
  int64_t cap_T_ = 0;
  // Scratch, sized for the largest T seen; hot loops never allocate.
  std::vector<float> x_, xb_, q_, att_, hb_, hb2_, out_;  // [T,C] [T,C] [T,Q] [T,Q] [T,FF] x2 [T,C]
  std::vector<float> head_xn_;                            // [T, C] head_logits' normed input
  std::vector<float> last_logits_;                        // [V]
  std::vector<float> exit_h_;                             // [E, T, C] forward_exits' output
  AttentionScratch attn_scratch_;
  RopeTable rope_;  // cos/sin for positions [0, max_seq)
  const LoraAdapters* lora_ = nullptr;
  LayerTaps* taps_ = nullptr;
  std::vector<float> lora_tmp_;  // [T, rank]
};

}  // namespace edgellm
