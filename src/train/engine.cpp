#include "train/engine.h"

#include <algorithm>
#include <cstring>

#include "kernels/activations.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "model/layer.h"
#include "util/error.h"

namespace edgellm {

namespace {

void zero(float* p, int64_t n) { std::memset(p, 0, static_cast<size_t>(n) * sizeof(float)); }

}  // namespace

TrainEngine::TrainEngine(const Model& m, LoraAdapters* lora, FullParams* full,
                         const EngineOptions& o)
    : m_(full ? &full->model() : &m), lora_(lora), full_(full), o_(o), c_(m.config()) {
  if (o_.max_T <= 0) fail("[train] sequence length {} must be positive", o_.max_T);
  if (o_.max_T > c_.max_seq_len)
    fail("[train] sequence length {} exceeds the model context of {} (max_seq_len)", o_.max_T,
         c_.max_seq_len);
  if (!lora && !full) fail("[train] nothing to train: neither adapters nor full weights");
  if (lora) {
    const ModelConfig& ac = lora->model_config();
    if (ac.dim != c_.dim || ac.n_layers != c_.n_layers || ac.hidden_dim != c_.hidden_dim ||
        ac.q_dim() != c_.q_dim() || ac.kv_dim() != c_.kv_dim())
      fail(
          "[train] adapter shape (dim {}, {} layers) does not match the model (dim {}, {} "
          "layers)",
          ac.dim, ac.n_layers, c_.dim, c_.n_layers);
  }
  rope_ = RopeTable(c_.head_dim, c_.rope_theta, c_.rope_scaling);
  rope_.ensure(o_.max_T);
  if (o_.max_window < 0)
    fail("[train] max_window {} must be 0 (all layers) or positive", o_.max_window);
  window_ = o_.max_window > 0 ? std::min(o_.max_window, c_.n_layers) : c_.n_layers;
  if (o_.recompute_layers < 0)
    fail("[train] recompute_layers {} must be 0 or more", o_.recompute_layers);
  // The window's top layer is never recomputed: its backward comes first, so its saved values
  // would sit in the one slot a recompute needs anyway. Full checkpointing is m - 1 recomputes.
  recompute_ = std::min(o_.checkpoint_activations ? window_ : o_.recompute_layers, window_ - 1);
  o_.head_rows = std::min(o_.head_rows, o_.max_T);
  carve();  // measuring pass: sizes only
  plan_workspace();
}

// Every linear of every layer, forward and dx, and dW when the weights are trained (the window
// may sit anywhere, and the layers below
// it run the same GEMMs), at the longest sequence; the head's GEMMs at a chunk of head_rows rows
// and at the last, shorter chunk. Shorter sequences (Alpaca records) need smaller operands; the
// scratchpad oneDNN asks for is taken to grow with the row count too.
void TrainEngine::plan_workspace() {
  GemmWorkspace ws;
  const int64_t T = o_.max_T, R = o_.head_rows;
  for (int l = 0; l < c_.n_layers; ++l)
    for (int t = 0; t < kLinears; ++t) {
      const WeightView& w = m_->layer(l).linear(static_cast<LinearId>(t));
      ws.merge(matmul_workspace(w, T));
      ws.merge(matmul_backward_workspace(w, T, full_ != nullptr));
    }
  const WeightView& h = m_->head().lm_head;
  for (const int64_t rows : {R, T % R}) {
    if (rows == 0) continue;
    ws.merge(matmul_workspace(h, rows));
    ws.merge(matmul_backward_workspace(h, rows, full_ != nullptr));
  }
  gemm_ws_ = ws;
}

size_t TrainEngine::lora_size() const { return lora_ ? lora_->params().size() : 0; }
size_t TrainEngine::full_size() const { return full_ ? full_->params().size() : 0; }

void TrainEngine::carve() {
  const int64_t T = o_.max_T, C = c_.dim, Q = c_.q_dim(), KVD = c_.kv_dim(), FF = c_.hidden_dim,
                V = c_.vocab_size, R = o_.head_rows, L = c_.n_layers;
  const int64_t r = lora_ ? lora_->config().rank : 0;
  const int64_t max_in = std::max<int64_t>({C, Q, FF});

  // Adapter gradients: all of them, or (windowed) the most any window of window_ layers holds:
  // every window [l0, l1) of at most window_ layers lies inside one of [s, s + window_).
  grads_windowed_ = lora_ && !full_ && window_ < L;
  size_t n_grad = lora_size();
  if (grads_windowed_) {
    n_grad = 0;
    for (int s = 0; s + window_ <= L; ++s) {
      const auto [lo, hi] = lora_span(s, s + window_);
      n_grad = std::max(n_grad, hi - lo);
    }
  }
  n_lora_grad_ = lora_ ? n_grad : 0;
  lora_grad_ = lora_ ? grads_.take(n_grad) : nullptr;
  grad_lo_ = 0;
  grad_hi_ = grads_windowed_ ? 0 : lora_size();
  full_grad_ = full_ ? grads_.take(full_size()) : nullptr;
  lg_.assign(L, LayerGrads{});
  if (full_ && !grads_.measuring()) {
    auto g = [&](const std::string& n) { return full_grad_ + full_->offset(n); };
    for (int l = 0; l < L; ++l) {
      const std::string p = fmt::format("model.layers.{}.", l);
      LayerGrads& x = lg_[l];
      x.wq = g(p + "self_attn.q_proj.weight");
      x.wk = g(p + "self_attn.k_proj.weight");
      x.wv = g(p + "self_attn.v_proj.weight");
      x.wo = g(p + "self_attn.o_proj.weight");
      x.wg = g(p + "mlp.gate_proj.weight");
      x.wu = g(p + "mlp.up_proj.weight");
      x.wd = g(p + "mlp.down_proj.weight");
      x.n1 = g(p + "input_layernorm.weight");
      x.n2 = g(p + "post_attention_layernorm.weight");
      if (c_.qkv_bias) {
        x.bq = g(p + "self_attn.q_proj.bias");
        x.bk = g(p + "self_attn.k_proj.bias");
        x.bv = g(p + "self_attn.v_proj.bias");
      }
    }
    g_embed_ = g("model.embed_tokens.weight");
    g_head_ = c_.tied_embeddings ? g_embed_ : g("lm_head.weight");
    g_norm_ = g("model.norm.weight");
  }

  x_in_.assign(window_ + 1, nullptr);
  for (auto& p : x_in_) p = acts_.take(T * C);
  slots_.resize(window_ - recompute_);
  for (LayerActs& a : slots_) {
    a.rms1 = acts_.take(T);
    a.xn1 = acts_.take(T * C);
    a.q = acts_.take(T * Q);
    a.k = acts_.take(T * KVD);
    a.v = acts_.take(T * KVD);
    a.att = acts_.take(T * Q);
    a.h = acts_.take(T * C);
    a.rms2 = acts_.take(T);
    a.xn2 = acts_.take(T * C);
    a.gate = acts_.take(T * FF);
    a.up = acts_.take(T * FF);
    for (int i = 0; i < kLoraTargets; ++i) a.u[i] = r ? acts_.take(T * r) : nullptr;
  }
  act_ = scratch_.take(T * FF);
  dact_ = scratch_.take(T * FF);
  dgate_ = scratch_.take(T * FF);
  dup_ = scratch_.take(T * FF);
  dn_ = scratch_.take(T * C);
  dq_ = scratch_.take(T * Q);
  dk_ = scratch_.take(T * KVD);
  dv_ = scratch_.take(T * KVD);
  datt_ = scratch_.take(T * Q);
  dp_ = scratch_.take(T * T);
  xd_ = lora_ && lora_->config().dropout > 0 ? scratch_.take(T * max_in) : nullptr;
  du_ = r ? scratch_.take(T * r) : nullptr;
  dx_ = scratch_.take(T * C);
  tmp_out_ = scratch_.take(T * C);
  rmsf_ = scratch_.take(T);
  xnf_ = scratch_.take(T * C);
  dxnf_ = scratch_.take(T * C);
  logits_ = scratch_.take(R * V);
  dlogits_ = scratch_.take(R * V);
  dloss_ = scratch_.take(R);
  loss_ = scratch_.take(R);
}

MemoryPlan TrainEngine::plan() const {
  MemoryPlan p;
  p[MemCategory::Gradients] = grads_.bytes();
  p[MemCategory::Activations] = acts_.bytes();
  // Attention probabilities: one head's [T, T] (the forward kernel's own buffer, reserved at
  // allocate()); the backward recomputes each head's into it (layer_backward).
  p[MemCategory::Scratch] = scratch_.bytes() + static_cast<size_t>(o_.max_T * o_.max_T) * 4;
  p[MemCategory::Workspace] = gemm_ws_.total() + rope_.bytes();
  return p;
}

MemoryPlan TrainEngine::allocated() const {
  MemoryPlan p;
  p[MemCategory::Gradients] = grads_.bytes();
  p[MemCategory::Activations] = acts_.bytes();
  p[MemCategory::Scratch] = scratch_.bytes() + attn_.scores.capacity() * 4;
  p[MemCategory::Workspace] = gemm_bf16_held_bytes() + rope_.bytes();
  return p;
}

void TrainEngine::allocate() {
  grads_.allocate();
  acts_.allocate();
  scratch_.allocate();
  carve();
  gemm_bf16_reserve(gemm_ws_);
  attn_.scores.reserve(static_cast<size_t>(o_.max_T * o_.max_T));
}

std::pair<size_t, size_t> TrainEngine::lora_span(int l0, int l1) const {
  size_t lo = SIZE_MAX, hi = 0;
  for (int l = l0; l < l1; ++l)
    for (int t = 0; t < kLoraTargets; ++t) {
      const auto tt = static_cast<LoraTarget>(t);
      if (!lora_->has(l, tt)) continue;
      const LoraLinear& x = lora_->at(l, tt);
      lo = std::min(lo, x.a);
      hi = std::max(hi, x.b + static_cast<size_t>(x.out * lora_->config().rank));
    }
  return lo < hi ? std::pair{lo, hi} : std::pair<size_t, size_t>{0, 0};
}

void TrainEngine::bind_grad_window(int l0, int l1) {
  const auto [lo, hi] = lora_span(l0, l1);
  if (grad_bound_) {
    // Gradient accumulation adds micro-batches of one window; another window would land on the
    // same slots.
    if (lo != grad_lo_ || hi != grad_hi_)
      fail("[train] backward of window [{}, {}) after another window's without zero_grad()", l0,
           l1);
    return;
  }
  grad_lo_ = lo;
  grad_hi_ = hi;
  grad_bound_ = true;
}

void TrainEngine::zero_grad() {
  if (lora_grad_) zero(lora_grad_, static_cast<int64_t>(n_lora_grad_));
  if (grads_windowed_) {
    grad_lo_ = grad_hi_ = 0;
    grad_bound_ = false;
  }
  if (full_grad_) zero(full_grad_, static_cast<int64_t>(full_size()));
}

const float* TrainEngine::dropout_input(int l, LoraTarget t, const float* x, int64_t n) {
  lora_dropout(xd_, x, n, dseed_, l, t, lora_->config().dropout);
  return xd_;
}

void TrainEngine::lora_backward(int l, LoraTarget t, float* dx, const float* dy, const float* x,
                                const float* u, int64_t T) {
  if (!lora_ || !lora_->has(l, t)) return;
  const LoraLinear& s = lora_->at(l, t);
  const int64_t r = lora_->config().rank;
  const float sc = lora_->config().scale();
  float* gA = lora_grad_ + (s.a - grad_lo_);  // [r, in]
  float* gB = lora_grad_ + (s.b - grad_lo_);  // [out, r]
  // dB[out, r] += scale·dyᵀ·u;  du[T, r] = scale·dy·B
  sgemm(true, false, s.out, r, T, sc, dy, s.out, u, r, 1.f, gB, r);
  sgemm(false, false, T, r, s.out, sc, dy, s.out, lora_->B(l, t), r, 0.f, du_, r);
  // dA[r, in] += duᵀ·dropout(x)
  const float* xin = xd_ ? dropout_input(l, t, x, T * s.in) : x;
  sgemm(true, false, r, s.in, T, 1.f, du_, r, xin, s.in, 1.f, gA, s.in);
  if (!dx) return;
  if (!xd_) {
    // dx[T, in] += du·A
    sgemm(false, false, T, s.in, r, 1.f, du_, r, lora_->A(l, t), s.in, 1.f, dx, s.in);
    return;
  }
  // Through dropout: dx += (du·A) ⊙ mask / (1 − p); xd_ is free again as scratch.
  sgemm(false, false, T, s.in, r, 1.f, du_, r, lora_->A(l, t), s.in, 0.f, xd_, s.in);
  const float p = lora_->config().dropout, inv = 1.f / (1.f - p);
  for (int64_t i = 0; i < T * s.in; ++i)
    if (lora_dropout_keep(dseed_, l, t, i, p)) dx[i] += xd_[i] * inv;
}

void TrainEngine::layer_forward(int l, const float* x, float* out, LayerActs& a, int64_t T,
                                bool train, LayerTaps* taps) {
  LayerContext ctx;
  ctx.config = &c_;
  ctx.rope = &rope_;
  ctx.lora = lora_;
  ctx.taps = taps;
  if (train && xd_) {
    ctx.dropout_scratch = xd_;
    ctx.dropout_p = lora_->config().dropout;
    ctx.dropout_seed = dseed_;
  }
  // Everything the backward reads goes to the slot; only the SwiGLU output, recomputed there,
  // goes to scratch. Positions start at 0: a training sequence has no cache before it.
  LayerBuffers b;
  b.rms1 = a.rms1;
  b.xn1 = a.xn1;
  b.q = a.q;
  b.k = a.k;
  b.v = a.v;
  b.att = a.att;
  b.h = a.h;
  b.rms2 = a.rms2;
  b.xn2 = a.xn2;
  b.gate = a.gate;
  b.up = a.up;
  b.act = act_;
  b.lora_u = a.u;
  b.attn = &attn_;
  edgellm::layer_forward(ctx, l, m_->layer(l), x, out, T, /*pos0=*/0, b);
}

void TrainEngine::layer_forward_frozen(int l, float* x, int64_t T, bool train) {
  LayerContext ctx;
  ctx.config = &c_;
  ctx.rope = &rope_;
  ctx.lora = lora_below_ ? lora_ : nullptr;
  ctx.taps = taps_;
  if (train && xd_ && ctx.lora) {
    ctx.dropout_scratch = xd_;
    ctx.dropout_p = lora_->config().dropout;
    ctx.dropout_seed = dseed_;
  }
  // Inference's aliasing (forward.cpp): the residual stream updated in place, one normed
  // buffer, SwiGLU over gate, one LoRA temporary. Slot 0 is free: the window runs after.
  LayerActs& a = slots_[0];
  LayerBuffers b;
  b.xn1 = b.xn2 = a.xn1;
  b.q = a.q;
  b.k = a.k;
  b.v = a.v;
  b.att = a.att;
  b.h = x;
  b.gate = b.act = a.gate;
  b.up = a.up;
  b.lora_u.fill(a.u[0]);
  b.attn = &attn_;
  edgellm::layer_forward(ctx, l, m_->layer(l), x, x, T, /*pos0=*/0, b);
}

void TrainEngine::layer_backward(int l, float* dx, const float* x, LayerActs& a, int64_t T,
                                 bool need_dx) {
  const LayerWeights& w = m_->layer(l);
  const int64_t C = c_.dim, Q = c_.q_dim(), KVD = c_.kv_dim(), FF = c_.hidden_dim;
  const LayerGrads* g = full_ ? &lg_[l] : nullptr;
  using LT = LoraTarget;
  // dx holds dLoss/d(out) [T, C]; the residual passes it through to h and x unchanged.
  // MLP: dact = dout·Wdown, then SwiGLU, then dn2 = dgate·Wg + dup·Wu.
  swiglu_forward(act_, a.gate, a.up, T * FF);  // recomputed, not saved
  zero(dact_, T * FF);
  matmul_backward(dact_, g ? g->wd : nullptr, dx, act_, w.w_down, T);
  lora_backward(l, LT::Down, dact_, dx, act_, a.u[6], T);
  zero(dgate_, T * FF);
  zero(dup_, T * FF);
  swiglu_backward(dgate_, dup_, dact_, a.gate, a.up, T * FF);
  zero(dn_, T * C);
  matmul_backward(dn_, g ? g->wg : nullptr, dgate_, a.xn2, w.w_gate, T);
  matmul_backward(dn_, g ? g->wu : nullptr, dup_, a.xn2, w.w_up, T);
  lora_backward(l, LT::Gate, dn_, dgate_, a.xn2, a.u[4], T);
  lora_backward(l, LT::Up, dn_, dup_, a.xn2, a.u[5], T);
  rmsnorm_backward(dx, g ? g->n2 : nullptr, dn_, a.h, w.ffn_norm, a.rms2, T, C);  // dx = dh
  // Attention: datt = dh·Wo, attention backward, RoPE⁻¹, dn1 = dq·Wq + dk·Wk + dv·Wv.
  zero(datt_, T * Q);
  matmul_backward(datt_, g ? g->wo : nullptr, dx, a.att, w.wo, T);
  lora_backward(l, LT::O, datt_, dx, a.att, a.u[3], T);
  // The probabilities are recomputed head by head from the saved q and k into the forward's
  // one-head buffer: [T, T] instead of [NH, T, T] per layer (the 134M step: 1 MiB against 151),
  // for one more Q·Kᵀ and softmax per layer (~7 ms per layer there).
  zero(dq_, T * Q);
  zero(dk_, T * KVD);
  zero(dv_, T * KVD);
  attn_.scores.resize(static_cast<size_t>(T * T));
  attention_backward_recompute(dq_, dk_, dv_, attn_.scores.data(), dp_, datt_, a.q, a.k, a.v, T,
                               c_.n_heads, c_.n_kv_heads, c_.head_dim, 0);
  rope_backward(dq_, rope_, T, c_.n_heads, 0);
  rope_backward(dk_, rope_, T, c_.n_kv_heads, 0);
  if (g) {
    bias_backward(g->bq, dq_, T, Q);
    bias_backward(g->bk, dk_, T, KVD);
    bias_backward(g->bv, dv_, T, KVD);
  }
  // Below the window's bottom nothing needs dn1 unless the norm gain itself is trained.
  const bool dn1 = need_dx || g;
  float* dn = dn1 ? dn_ : nullptr;
  if (dn1) zero(dn_, T * C);
  matmul_backward(dn, g ? g->wq : nullptr, dq_, a.xn1, w.wq, T);
  matmul_backward(dn, g ? g->wk : nullptr, dk_, a.xn1, w.wk, T);
  matmul_backward(dn, g ? g->wv : nullptr, dv_, a.xn1, w.wv, T);
  lora_backward(l, LT::Q, dn, dq_, a.xn1, a.u[0], T);
  lora_backward(l, LT::K, dn, dk_, a.xn1, a.u[1], T);
  lora_backward(l, LT::V, dn, dv_, a.xn1, a.u[2], T);
  if (dn1) rmsnorm_backward(dx, g ? g->n1 : nullptr, dn_, x, w.attn_norm, a.rms1, T, C);
}

double TrainEngine::head(const float* x, const int32_t* targets, int64_t T, bool backward,
                         float scale, int64_t* count) {
  const int64_t C = c_.dim, V = c_.vocab_size, R = o_.head_rows;
  const HeadWeights hw = has_exit_ ? exit_hw_ : m_->head();
  float* g_head = has_exit_ ? exit_head_grad_ : g_head_;
  float* g_norm = has_exit_ ? exit_norm_grad_ : g_norm_;
  head_norm(c_, hw, x, xnf_, rmsf_, T);
  if (backward) zero(dxnf_, T * C);
  double sum = 0;
  for (int64_t r0 = 0; r0 < T; r0 += R) {
    const int64_t nr = std::min(R, T - r0);
    bool any = false;
    for (int64_t i = 0; i < nr; ++i) any |= targets[r0 + i] >= 0;
    if (!any) continue;  // fully masked rows (an Alpaca prompt) cost no head GEMM
    head_logits(hw, xnf_ + r0 * C, logits_, nr);
    cross_entropy_forward(loss_, logits_, targets + r0, nr, V);
    for (int64_t i = 0; i < nr; ++i)
      if (targets[r0 + i] >= 0) {
        sum += loss_[i];
        ++*count;
        dloss_[i] = scale;
      }
    if (!backward) continue;
    zero(dlogits_, nr * V);
    cross_entropy_backward(dlogits_, dloss_, logits_, targets + r0, nr, V);
    matmul_backward(dxnf_ + r0 * C, g_head, dlogits_, xnf_ + r0 * C, hw.lm_head, nr);
  }
  if (backward) {
    zero(dx_, T * C);
    rmsnorm_backward(dx_, g_norm, dxnf_, x, hw.norm, rmsf_, T, C);
  }
  return sum;
}

StepResult TrainEngine::run(const int32_t* tokens, const int32_t* targets, int64_t T, bool backward,
                            float loss_scale, uint64_t dropout_seed, int l0, int l1,
                            const float* x0, int x0_depth) {
  const int L = c_.n_layers;
  if (l1 < 0) l1 = L;
  EDGELLM_CHECK(!grads_.measuring(), "run() before allocate()");
  EDGELLM_CHECK(0 <= l0 && l0 <= l1 && l1 <= L, "layer window [{}, {}) of {}", l0, l1, L);
  // Forward only (no backward) needs no saved values either: the window may start anywhere.
  if (!backward) l0 = std::max(l0, l1 - window_);
  if (l1 - l0 > window_)
    fail(
        "[train] layer window [{}, {}) spans {} layers; the engine was planned for {} (max_window)",
        l0, l1, l1 - l0, window_);
  if (T <= 0 || T > o_.max_T)
    fail("[train] sequence of {} tokens outside the planned 1..{}", T, o_.max_T);
  if (x0_depth < 0 || x0_depth > l0 || (x0_depth > 0 && !x0))
    fail("[train] prefix input at layer {} with a window from layer {} ({})", x0_depth, l0,
         x0 ? "given" : "none given");
  dseed_ = dropout_seed;
  const int64_t C = c_.dim;
  if (x0) {
    if (x0 != x_in_[0]) std::memcpy(x_in_[0], x0, static_cast<size_t>(T * C) * sizeof(float));
  } else {
    const WeightView& e = m_->tok_embedding();
    for (int64_t t = 0; t < T; ++t) {
      if (tokens[t] < 0 || tokens[t] >= c_.vocab_size)
        fail("[train] token id {} at position {} outside vocab of {}", tokens[t], t, c_.vocab_size);
      decode_row(e.dtype, e.row(tokens[t]), x_in_[0] + t * C, C);
    }
  }
  // The window's lowest k layers share slot 0 (in the forward, before any kept layer writes its
  // own; in the backward, after every kept layer's backward is done). Never the top one.
  const int k = std::min(recompute_, std::max(l1 - l0 - 1, 0));
  auto recomputed = [&](int l) { return l - l0 < k; };
  auto slot = [&](int l) -> LayerActs& { return recomputed(l) ? slots_[0] : slots_[l - l0 - k]; };
  auto in = [&](int l) { return x_in_[l - l0]; };
  for (int l = x0_depth; l < l0; ++l) layer_forward_frozen(l, x_in_[0], T, backward);
  if (window_transform_ && x0_depth < l0) window_transform_(x_in_[0], T);
  for (int l = l0; l < l1; ++l) layer_forward(l, in(l), in(l + 1), slot(l), T, backward, taps_);
  layer_forwards_ = l1 - x0_depth;
  StepResult r;
  r.loss_sum = head(in(l1), targets, T, backward, loss_scale, &r.tokens);
  if (!backward) return r;
  if (grads_windowed_) bind_grad_window(l0, l1);
  for (int l = l1 - 1; l >= l0; --l) {
    if (recomputed(l)) layer_forward(l, in(l), tmp_out_, slots_[0], T, true, nullptr);
    layer_backward(l, dx_, in(l), slot(l), T, /*need_dx=*/l > l0 || (x0 && x0_depth == 0) || full_);
  }
  if (full_ && l0 == 0 && !x0) embedding_backward(g_embed_, dx_, tokens, T, C);
  return r;
}

}  // namespace edgellm
