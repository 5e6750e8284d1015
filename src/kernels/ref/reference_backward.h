// Scalar references of every backward kernel, templated on the scalar type like reference.h.
// Each is the textbook vector-Jacobian product of the matching forward in reference.h, written
// for clarity; tests check them against central finite differences in double, and the fast
// backward kernels against them. All accumulate (+=) into their outputs, as the fast ones do.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/ref/reference.h"

namespace edgellm::ref {

// y = x·Wᵀ: dx[T, K] += dy[T, N]·W[N, K]; dw[N, K] += dyᵀ·x (either may be null)
template <typename S>
void matmul_backward(S* dx, S* dw, const S* dy, const S* x, const S* w, int64_t T, int64_t N,
                     int64_t K) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) {
        if (dx) dx[t * K + k] += dy[t * N + n] * w[n * K + k];
        if (dw) dw[n * K + k] += dy[t * N + n] * x[t * K + k];
      }
}

// out = x·r·w, r = 1/sqrt(mean(x²) + eps)
template <typename S>
void rmsnorm_backward(S* dx, S* dw, const S* dout, const S* x, const S* w, int64_t T, int64_t C,
                      S eps) {
  for (int64_t t = 0; t < T; ++t) {
    const S* xr = x + t * C;
    const S* dy = dout + t * C;
    S ss = 0;
    for (int64_t i = 0; i < C; ++i) ss += xr[i] * xr[i];
    const S r = S(1) / std::sqrt(ss / S(C) + eps);
    S dot = 0;
    for (int64_t j = 0; j < C; ++j) dot += w[j] * dy[j] * xr[j];
    for (int64_t i = 0; i < C; ++i) {
      if (dx) dx[t * C + i] += r * w[i] * dy[i] - r * r * r / S(C) * xr[i] * dot;
      if (dw) dw[i] += dy[i] * xr[i] * r;
    }
  }
}

// Interleaved RoPE: the gradient rotates by the opposite angle (in place on d[T, H*HD]).
template <typename S>
void rope_backward(S* d, int64_t T, int64_t H, int64_t HD, int64_t pos0,
                   const std::vector<double>& freq) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < HD / 2; ++i) {
        const double a = double(pos0 + t) * freq[i];
        const S c = S(std::cos(a)), s = S(std::sin(a));
        S* p = d + t * H * HD + h * HD + 2 * i;
        const S d0 = p[0], d1 = p[1];
        p[0] = d0 * c + d1 * s;
        p[1] = -d0 * s + d1 * c;
      }
}

// Causal GQA attention (forward in reference.h), recomputing the probabilities.
template <typename S>
void attention_backward(S* dq, S* dk, S* dv, const S* dout, const S* q, const S* k, const S* v,
                        int64_t T, int64_t NH, int64_t KV, int64_t HD, int64_t pos0) {
  const int64_t group = NH / KV;
  const S scale = S(1) / std::sqrt(S(HD));
  std::vector<S> p, dp;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < NH; ++h) {
      const int64_t g = h / group, n = pos0 + t + 1;
      const S* qh = q + t * NH * HD + h * HD;
      const S* doh = dout + t * NH * HD + h * HD;
      p.assign(n, 0);
      dp.assign(n, 0);
      S mx = -INFINITY;
      for (int64_t s = 0; s < n; ++s) {
        S d = 0;
        for (int64_t i = 0; i < HD; ++i) d += qh[i] * k[s * KV * HD + g * HD + i];
        p[s] = d * scale;
        mx = std::max(mx, p[s]);
      }
      S sum = 0;
      for (int64_t s = 0; s < n; ++s) sum += (p[s] = std::exp(p[s] - mx));
      for (int64_t s = 0; s < n; ++s) p[s] /= sum;
      S dot = 0;
      for (int64_t s = 0; s < n; ++s) {
        for (int64_t i = 0; i < HD; ++i) {
          dp[s] += doh[i] * v[s * KV * HD + g * HD + i];
          dv[s * KV * HD + g * HD + i] += p[s] * doh[i];
        }
        dot += p[s] * dp[s];
      }
      for (int64_t s = 0; s < n; ++s) {
        const S dz = p[s] * (dp[s] - dot) * scale;
        for (int64_t i = 0; i < HD; ++i) {
          dq[t * NH * HD + h * HD + i] += dz * k[s * KV * HD + g * HD + i];
          dk[s * KV * HD + g * HD + i] += dz * qh[i];
        }
      }
    }
}

// out = silu(gate)·up
template <typename S>
void swiglu_backward(S* dgate, S* dup, const S* dout, const S* gate, const S* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const S s = S(1) / (S(1) + std::exp(-gate[i]));
    dgate[i] += dout[i] * up[i] * (s + gate[i] * s * (S(1) - s));
    dup[i] += dout[i] * gate[i] * s;
  }
}

// loss[t] = logsumexp(logits[t]) − logits[t, target[t]]; rows with target < 0 are masked.
template <typename S>
void cross_entropy_backward(S* dlogits, const S* dloss, const S* logits, const int32_t* target,
                            int64_t T, int64_t V) {
  for (int64_t t = 0; t < T; ++t) {
    if (target[t] < 0) continue;
    S mx = -INFINITY;
    for (int64_t j = 0; j < V; ++j) mx = std::max(mx, logits[t * V + j]);
    S sum = 0;
    for (int64_t j = 0; j < V; ++j) sum += std::exp(logits[t * V + j] - mx);
    for (int64_t j = 0; j < V; ++j)
      dlogits[t * V + j] += dloss[t] * (std::exp(logits[t * V + j] - mx) / sum);
    dlogits[t * V + target[t]] -= dloss[t];
  }
}

// x[t] = E[tokens[t]]
template <typename S>
void embedding_backward(S* dE, const S* dx, const int32_t* tokens, int64_t T, int64_t C) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < C; ++i) dE[tokens[t] * C + i] += dx[t * C + i];
}

}  // namespace edgellm::ref
