#include "model/layer.h"

#include <cstring>

#include "kernels/activations.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"

namespace edgellm {

const char* tap_name(TapPoint p) {
  switch (p) {
    case TapPoint::LayerInput:
      return "layer_in";
    case TapPoint::AttnNorm:
      return "attn_norm";
    case TapPoint::AttnOut:
      return "attn_out";
    case TapPoint::FfnNorm:
      return "ffn_norm";
    case TapPoint::SwiGLU:
      return "swiglu";
    case TapPoint::LayerOutput:
      return "layer_out";
  }
  return "?";
}

TapPoint tap_of_linear(LinearId t) {
  switch (t) {
    case LinearId::Q:
    case LinearId::K:
    case LinearId::V:
      return TapPoint::AttnNorm;
    case LinearId::O:
      return TapPoint::AttnOut;
    case LinearId::Gate:
    case LinearId::Up:
      return TapPoint::FfnNorm;
    case LinearId::Down:
      return TapPoint::SwiGLU;
  }
  return TapPoint::AttnNorm;
}

namespace {

void copy(float* dst, const float* src, int64_t n) {
  if (dst != src) std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

// y[T, out] += adapter(x), through dropout when the context asks for it.
void lora(const LayerContext& ctx, int l, LinearId t, const float* x, float* y, float* u,
          int64_t T) {
  if (!ctx.lora || !ctx.lora->has(l, t)) return;
  const float* in = x;
  if (ctx.dropout_scratch) {
    lora_dropout(ctx.dropout_scratch, x, T * ctx.lora->at(l, t).in, ctx.dropout_seed, l, t,
                 ctx.dropout_p);
    in = ctx.dropout_scratch;
  }
  ctx.lora->apply(l, t, in, y, T, u);
}

}  // namespace

void layer_forward(const LayerContext& ctx, int l, const LayerWeights& w, const float* x,
                   float* out, int64_t T, int64_t pos0, LayerBuffers& b) {
  const ModelConfig& c = *ctx.config;
  const int64_t C = c.dim, Q = c.q_dim(), KVD = c.kv_dim(), FF = c.hidden_dim;
  LayerTaps* taps = ctx.taps;
  using L = LinearId;
  if (taps) taps->on(TapPoint::LayerInput, l, x, T, C);

  // Attention block. This call's keys/values go straight into their rows of b.k / b.v (the KV
  // cache at inference), which attention then reads from position 0.
  float* kc = b.k + pos0 * KVD;
  float* vc = b.v + pos0 * KVD;
  rmsnorm_forward(b.xn1, b.rms1, x, w.attn_norm, T, C, c.norm_eps);
  if (taps) taps->on(TapPoint::AttnNorm, l, b.xn1, T, C);
  matmul(b.xn1, w.wq, b.q, T);
  matmul(b.xn1, w.wk, kc, T);
  matmul(b.xn1, w.wv, vc, T);
  lora(ctx, l, L::Q, b.xn1, b.q, b.lora_u[0], T);
  lora(ctx, l, L::K, b.xn1, kc, b.lora_u[1], T);
  lora(ctx, l, L::V, b.xn1, vc, b.lora_u[2], T);
  bias_forward(b.q, w.bq, T, Q);
  bias_forward(kc, w.bk, T, KVD);
  bias_forward(vc, w.bv, T, KVD);
  rope_forward(b.q, *ctx.rope, T, c.n_heads, pos0);
  rope_forward(kc, *ctx.rope, T, c.n_kv_heads, pos0);
  attention_forward(b.att, *b.attn, b.q, b.k, b.v, T, c.n_heads, c.n_kv_heads, c.head_dim, pos0);
  if (taps) taps->on(TapPoint::AttnOut, l, b.att, T, Q);
  copy(b.h, x, T * C);
  matmul(b.att, w.wo, b.h, T, /*accumulate=*/true);  // residual add fused into the GEMM
  lora(ctx, l, L::O, b.att, b.h, b.lora_u[3], T);

  // SwiGLU MLP block.
  rmsnorm_forward(b.xn2, b.rms2, b.h, w.ffn_norm, T, C, c.norm_eps);
  if (taps) taps->on(TapPoint::FfnNorm, l, b.xn2, T, C);
  matmul(b.xn2, w.w_gate, b.gate, T);
  matmul(b.xn2, w.w_up, b.up, T);
  lora(ctx, l, L::Gate, b.xn2, b.gate, b.lora_u[4], T);
  lora(ctx, l, L::Up, b.xn2, b.up, b.lora_u[5], T);
  swiglu_forward(b.act, b.gate, b.up, T * FF);
  if (taps) taps->on(TapPoint::SwiGLU, l, b.act, T, FF);
  copy(out, b.h, T * C);
  matmul(b.act, w.w_down, out, T, /*accumulate=*/true);
  lora(ctx, l, L::Down, b.act, out, b.lora_u[6], T);
  if (taps) taps->on(TapPoint::LayerOutput, l, out, T, C);
}

void head_norm(const ModelConfig& c, const HeadWeights& hw, const float* x, float* xn,
               float* inv_rms, int64_t T) {
  rmsnorm_forward(xn, inv_rms, x, hw.norm, T, c.dim, c.norm_eps);
}

void head_logits(const HeadWeights& hw, const float* xn, float* logits, int64_t n) {
  matmul(xn, hw.lm_head, logits, n);
}

}  // namespace edgellm
