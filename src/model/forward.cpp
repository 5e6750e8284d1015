#include "model/forward.h"

#include <algorithm>

#include "kernels/activations.h"
#include "kernels/rmsnorm.h"
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

void InferenceState::layer_forward(int l, float* x, int64_t T, int64_t pos0) {
  const ModelConfig& c = m_.config();
  const LayerWeights& w = m_.layer(l);
  const int64_t C = c.dim, Q = c.q_dim(), KVD = c.kv_dim(), FF = c.hidden_dim;
  reserve(T);
  float* kc = cache_.k_at(l, pos0);
  float* vc = cache_.v_at(l, pos0);

  // Attention block.
  rmsnorm_forward(xb_.data(), nullptr, x, w.attn_norm, T, C, c.norm_eps);
  matmul(xb_.data(), w.wq, q_.data(), T);
  matmul(xb_.data(), w.wk, kc, T);  // keys/values go straight into the cache rows
  matmul(xb_.data(), w.wv, vc, T);
  auto lora = [&](LoraTarget t, const float* in, float* out) {
    if (lora_) lora_->apply(l, t, in, out, T, lora_tmp_.data());
  };
  lora(LoraTarget::Q, xb_.data(), q_.data());
  lora(LoraTarget::K, xb_.data(), kc);
  lora(LoraTarget::V, xb_.data(), vc);
  bias_forward(q_.data(), w.bq, T, Q);
  bias_forward(kc, w.bk, T, KVD);
  bias_forward(vc, w.bv, T, KVD);
  rope_forward(q_.data(), rope_, T, c.n_heads, pos0);
  rope_forward(kc, rope_, T, c.n_kv_heads, pos0);
  attention_forward(att_.data(), attn_scratch_, q_.data(), cache_.k_at(l, 0), cache_.v_at(l, 0), T,
                    c.n_heads, c.n_kv_heads, c.head_dim, pos0);
  matmul(att_.data(), w.wo, x, T, /*accumulate=*/true);  // residual add fused into the GEMM
  lora(LoraTarget::O, att_.data(), x);

  // SwiGLU MLP block.
  rmsnorm_forward(xb_.data(), nullptr, x, w.ffn_norm, T, C, c.norm_eps);
  matmul(xb_.data(), w.w_gate, hb_.data(), T);
  matmul(xb_.data(), w.w_up, hb2_.data(), T);
  lora(LoraTarget::Gate, xb_.data(), hb_.data());
  lora(LoraTarget::Up, xb_.data(), hb2_.data());
  swiglu_forward(hb_.data(), hb_.data(), hb2_.data(), T * FF);
  matmul(hb_.data(), w.w_down, x, T, /*accumulate=*/true);
  lora(LoraTarget::Down, hb_.data(), x);
}

void InferenceState::final_norm(const float* x, float* out, int64_t T) const {
  const ModelConfig& c = m_.config();
  rmsnorm_forward(out, nullptr, x, m_.final_norm(), T, c.dim, c.norm_eps);
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
  for (int l = 0; l < c.n_layers; ++l) layer_forward(l, x_.data(), T, pos0);
  cache_.len = pos0 + T;
  final_norm(x_.data(), out_.data(), T);
  return out_.data();
}

void InferenceState::logits(const float* hidden, int64_t n, float* out) const {
  matmul(hidden, m_.lm_head(), out, n);
}

const float* InferenceState::forward_last_logits(const int32_t* tokens, int64_t T) {
  const float* h = forward(tokens, T);
  logits(h + (T - 1) * m_.config().dim, 1, last_logits_.data());
  return last_logits_.data();
}

}  // namespace edgellm
