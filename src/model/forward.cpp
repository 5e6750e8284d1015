#include "model/forward.h"

#include <algorithm>

#include "util/error.h"

namespace edgellm {

void KVCache::init(const ModelConfig& c, int64_t n) {
  max_seq = n;
  kv_dim = c.kv_dim();
  len = 0;
  k.assign(static_cast<size_t>(c.n_layers * n * kv_dim), 0.f);
  v.assign(static_cast<size_t>(c.n_layers * n * kv_dim), 0.f);
}

InferenceState::InferenceState(const Model& m, int64_t max_seq) : m_(m) {
  const ModelConfig& c = m.config();
  const int64_t n = max_seq > 0 ? max_seq : std::min<int64_t>(c.max_seq_len, 4096);
  cache_.init(c, n);
  rope_ = RopeTable(c.head_dim, c.rope_theta, c.rope_scaling);
  rope_.ensure(n);
  last_logits_.resize(c.vocab_size);
}

void InferenceState::set_adapter(const LoraAdapters* a) {
  if (a) {
    const ModelConfig &c = m_.config(), &ac = a->model_config();
    if (ac.dim != c.dim || ac.hidden_dim != c.hidden_dim || ac.n_layers != c.n_layers ||
        ac.q_dim() != c.q_dim() || ac.kv_dim() != c.kv_dim())
      fail(
          "[lora] adapter for a model of dim {}, ff {}, {} layers does not fit this model "
          "(dim {}, ff {}, {} layers)",
          ac.dim, ac.hidden_dim, ac.n_layers, c.dim, c.hidden_dim, c.n_layers);
    lora_tmp_.resize(static_cast<size_t>(cap_T_ * a->config().rank));
  }
  lora_ = a;
}

void InferenceState::reserve(int64_t T) {
  if (T <= cap_T_) return;
  if (lora_) lora_tmp_.resize(static_cast<size_t>(T * lora_->config().rank));
  const ModelConfig& c = m_.config();
  x_.resize(T * c.dim);
  xb_.resize(T * c.dim);
  q_.resize(T * c.q_dim());
  att_.resize(T * c.q_dim());
  hb_.resize(T * c.hidden_dim);
  hb2_.resize(T * c.hidden_dim);
  out_.resize(T * c.dim);
  cap_T_ = T;
}

void InferenceState::embed(const int32_t* tokens, int64_t T, float* x) const {
  const ModelConfig& c = m_.config();
  const WeightView& e = m_.tok_embedding();
  for (int64_t t = 0; t < T; ++t) {
    if (tokens[t] < 0 || tokens[t] >= c.vocab_size)
      fail("[forward] token id {} at position {} outside vocab of {}", tokens[t], t, c.vocab_size);
    decode_row(e.dtype, e.row(tokens[t]), x + t * c.dim, c.dim);
  }
}

void InferenceState::truncate(int64_t len) {
  if (len < 0 || len > cache_.len)
    fail("[forward] truncate to {} positions: the cache holds {}", len, cache_.len);
  cache_.len = len;
}

void InferenceState::layer_forward(int l, float* x, int64_t T, int64_t pos0,
                                   const LayerWeights* w) {
  reserve(T);
  LayerContext ctx;
  ctx.config = &m_.config();
  ctx.rope = &rope_;
  ctx.lora = lora_;
  ctx.taps = taps_;
  // In place: the residual stream x is h and out; the two norms share xb_, and SwiGLU writes
  // over its gate.
  LayerBuffers b;
  b.xn1 = b.xn2 = xb_.data();
  b.q = q_.data();
  b.k = cache_.k_at(l, 0);
  b.v = cache_.v_at(l, 0);
  b.att = att_.data();
  b.h = x;
  b.gate = b.act = hb_.data();
  b.up = hb2_.data();
  b.lora_u.fill(lora_tmp_.data());
  b.attn = &attn_scratch_;
  edgellm::layer_forward(ctx, l, w ? *w : m_.layer(l), x, x, T, pos0, b);
}

void InferenceState::forward_layers(float* x, int64_t T, int64_t pos0, int l0, int l1) {
  const ModelConfig& c = m_.config();
  EDGELLM_CHECK(0 <= l0 && l0 <= l1 && l1 <= c.n_layers, "layers [{}, {}) of {}", l0, l1,
                c.n_layers);
  if (T <= 0) fail("[forward] empty token batch");
  if (pos0 < 0 || pos0 + T > cache_.max_seq)
    fail("[forward] positions {}..{} outside the context of {} (model max_seq_len {})", pos0,
         pos0 + T - 1, cache_.max_seq, c.max_seq_len);
  for (int l = l0; l < l1; ++l) layer_forward(l, x, T, pos0);
}

void InferenceState::final_norm(const float* x, float* out, int64_t T) const {
  head_norm(m_.config(), m_.head(), x, out, nullptr, T);
}

void InferenceState::head_logits(const float* x, int64_t T, float* logits) {
  const size_t n = static_cast<size_t>(T * m_.config().dim);
  if (head_xn_.size() < n) head_xn_.resize(n);
  final_norm(x, head_xn_.data(), T);
  edgellm::head_logits(m_.head(), head_xn_.data(), logits, T);
}

const float* InferenceState::forward(const int32_t* tokens, int64_t T) {
  const ModelConfig& c = m_.config();
  const int64_t pos0 = cache_.len;
  if (T <= 0) fail("[forward] empty token batch");
  if (pos0 + T > cache_.max_seq)
    fail("[forward] sequence of {} tokens exceeds the context of {} (model max_seq_len {})",
         pos0 + T, cache_.max_seq, c.max_seq_len);
  reserve(T);
  embed(tokens, T, x_.data());
  forward_layers(x_.data(), T, pos0, 0, c.n_layers);
  cache_.len = pos0 + T;
  final_norm(x_.data(), out_.data(), T);
  return out_.data();
}

const float* InferenceState::forward_exits(const int32_t* tokens, int64_t T,
                                           const std::vector<int>& depths) {
  const ModelConfig& c = m_.config();
  const int64_t pos0 = cache_.len;
  if (T <= 0) fail("[forward] empty token batch");
  if (depths.empty()) fail("[forward] no exit depths");
  if (pos0 + T > cache_.max_seq)
    fail("[forward] sequence of {} tokens exceeds the context of {} (model max_seq_len {})",
         pos0 + T, cache_.max_seq, c.max_seq_len);
  reserve(T);
  const size_t n = static_cast<size_t>(T * c.dim);
  exit_h_.resize(n * depths.size());
  embed(tokens, T, x_.data());
  int l = 0;
  for (size_t i = 0; i < depths.size(); ++i) {
    if (depths[i] < l || depths[i] > c.n_layers)
      fail("[forward] exit depth {} not in increasing order within 1..{}", depths[i], c.n_layers);
    forward_layers(x_.data(), T, pos0, l, depths[i]);
    l = depths[i];
    std::copy(x_.begin(), x_.begin() + static_cast<std::ptrdiff_t>(n), exit_h_.begin() + i * n);
  }
  cache_.len = pos0 + T;
  return exit_h_.data();
}

void InferenceState::logits(const float* hidden, int64_t n, float* out) const {
  edgellm::head_logits(m_.head(), hidden, out, n);
}

const float* InferenceState::forward_last_logits(const int32_t* tokens, int64_t T) {
  const float* h = forward(tokens, T);
  logits(h + (T - 1) * m_.config().dim, 1, last_logits_.data());
  return last_logits_.data();
}

}  // namespace edgellm
