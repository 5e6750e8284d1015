// Backward of causal GQA attention (attention.h), per query head h reading KV head g = h/group:
//   out_h = P_h·v_g,  P_h = softmax(Z_h),  Z_h = q_h·k_gᵀ/√HD (+ causal mask)
//   dv_g += P_hᵀ·dout_h;  dP = dout_h·v_gᵀ;  dZ = P ⊙ (dP − rowsum(P ⊙ dP))
//   dq_h += dZ·k_g/√HD;   dk_g += dZᵀ·q_h/√HD
// Masked entries have P = 0, so dZ = 0 there and no mask is needed. Heads of one KV group add
// into the same dk_g/dv_g, so heads run one after another, each as strided GEMMs.
#include <algorithm>
#include <cmath>

#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "simd/simd.h"
#include "util/error.h"

namespace edgellm {

namespace {

// Head h's backward from its probabilities P [T, S]; dp is T*S floats of scratch.
void head_backward(float* dq, float* dk, float* dv, float* dp, const float* dout, const float* q,
                   const float* k, const float* v, const float* P, int64_t h, int64_t T, int64_t NH,
                   int64_t KV, int64_t HD, int64_t pos0) {
  const int64_t S = pos0 + T, g = h / (NH / KV), qs = NH * HD, ks = KV * HD;
  const float scale = 1.f / std::sqrt(static_cast<float>(HD));
  // dv_g[S, HD] += Pᵀ[S, T] · dout_h[T, HD]
  sgemm(true, false, S, HD, T, 1.f, P, S, dout + h * HD, qs, 1.f, dv + g * HD, ks);
  // dp[T, S] = dout_h[T, HD] · v_gᵀ[HD, S]
  sgemm(false, true, T, S, HD, 1.f, dout + h * HD, qs, v + g * HD, ks, 0.f, dp, S);
#pragma omp parallel for schedule(static) if (T > 1)
  for (int64_t t = 0; t < T; ++t) {
    float* d = dp + t * S;
    const int64_t n = pos0 + t + 1;  // causal prefix; beyond it P = 0
    simd::softmax_backward_row(d, P + t * S, n);
    std::fill(d + n, d + S, 0.f);
  }
  // dq_h[T, HD] += scale · dZ[T, S] · k_g[S, HD];  dk_g[S, HD] += scale · dZᵀ[S, T] · q_h[T, HD]
  sgemm(false, false, T, HD, S, scale, dp, S, k + g * HD, ks, 1.f, dq + h * HD, qs);
  sgemm(true, false, S, HD, T, scale, dp, S, q + h * HD, qs, 1.f, dk + g * HD, ks);
}

}  // namespace

void attention_backward(float* dq, float* dk, float* dv, float* dp, const float* dout,
                        const float* q, const float* k, const float* v, const float* probs,
                        int64_t T, int64_t NH, int64_t KV, int64_t HD, int64_t pos0) {
  EDGELLM_CHECK(NH % KV == 0, "NH {} not a multiple of KV {}", NH, KV);
  const int64_t S = pos0 + T;
  for (int64_t h = 0; h < NH; ++h)
    head_backward(dq, dk, dv, dp, dout, q, k, v, probs + h * T * S, h, T, NH, KV, HD, pos0);
}

void attention_backward_recompute(float* dq, float* dk, float* dv, float* p, float* dp,
                                  const float* dout, const float* q, const float* k, const float* v,
                                  int64_t T, int64_t NH, int64_t KV, int64_t HD, int64_t pos0) {
  EDGELLM_CHECK(NH % KV == 0, "NH {} not a multiple of KV {}", NH, KV);
  for (int64_t h = 0; h < NH; ++h) {
    attention_probs_head(p, q, k, h, T, NH, KV, HD, pos0);
    head_backward(dq, dk, dv, dp, dout, q, k, v, p, h, T, NH, KV, HD, pos0);
  }
}

}  // namespace edgellm
