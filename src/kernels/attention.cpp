#include "kernels/attention.h"

#include <algorithm>
#include <cmath>

#include "kernels/matmul.h"
#include "kernels/threads.h"
#include "simd/simd.h"
#include "util/error.h"

namespace edgellm {

void attention_probs_head(float* P, const float* q, const float* k, int64_t h, int64_t T,
                          int64_t NH, int64_t KV, int64_t HD, int64_t pos0) {
  const int64_t S = pos0 + T, g = h / (NH / KV);
  const float scale = 1.f / std::sqrt(static_cast<float>(HD));
  sgemm(false, true, T, S, HD, scale, q + h * HD, NH * HD, k + g * HD, KV * HD, 0.f, P, S);
#pragma omp parallel for schedule(static) if (T * S >= (1 << 14))
  for (int64_t t = 0; t < T; ++t) simd::softmax_prefix(P + t * S, pos0 + t + 1, S);
}

void attention_forward(float* out, AttentionScratch& scratch, const float* q, const float* k,
                       const float* v, int64_t T, int64_t NH, int64_t KV, int64_t HD,
                       int64_t pos0) {
  EDGELLM_CHECK(NH % KV == 0, "NH {} not a multiple of KV {}", NH, KV);
  const int64_t S = pos0 + T, group = NH / KV, qs = NH * HD, ks = KV * HD;
  const float scale = 1.f / std::sqrt(static_cast<float>(HD));
  const bool all = T == 1 || scratch.keep_all_heads;
  scratch.scores.resize(static_cast<size_t>((all ? NH : 1) * T * S));
  float* P = scratch.scores.data();

  if (T == 1) {
    // Decode: one query row per head; too small for a GEMM call, parallel over heads once the
    // cache is long enough to be worth it, on the decode pool that runs the GEMVs around it
    // (kernels/threads.h: waking OpenMP's passive threads here would also preempt that pool).
    const simd::DotF32Fn dot = simd::dot_f32_kernel();  // dispatch hoisted out of the loops
    parallel_ranges_if(NH * S * HD >= (1 << 15), NH, [&](int64_t h0, int64_t h1) {
      for (int64_t h = h0; h < h1; ++h) {
        const int64_t g = h / group;
        const float* qh = q + h * HD;
        float* p = P + h * S;
        for (int64_t s = 0; s < S; ++s) p[s] = dot(qh, k + s * ks + g * HD, HD) * scale;
        simd::softmax_prefix(p, S, S);
        if (!out) continue;
        float* o = out + h * HD;
        std::fill(o, o + HD, 0.f);
        for (int64_t s = 0; s < S; ++s) simd::axpy(o, p[s], v + s * ks + g * HD, HD);
      }
    });
    return;
  }

  // Prefill: per head, scores = q_h k_gᵀ and out_h = P v_g as strided GEMMs (the heads are
  // column blocks of q/k/v, so lda = NH*HD / KV*HD and no copies are needed).
  for (int64_t h = 0; h < NH; ++h) {
    float* Ph = all ? P + h * T * S : P;
    attention_probs_head(Ph, q, k, h, T, NH, KV, HD, pos0);
    if (out)
      sgemm(false, false, T, HD, S, 1.f, Ph, S, v + h / group * HD, ks, 0.f, out + h * HD, qs);
  }
}

}  // namespace edgellm
