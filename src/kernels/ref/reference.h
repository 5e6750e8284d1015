// Scalar references of every fast kernel: the truth the fast paths are tested against.
// Templated on the scalar type so they run in double (finite-difference checks) or float.
// Written for clarity, not speed: one loop nest per formula, no blocking, no SIMD.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace edgellm::ref {

// y[T, N] = x[T, K] · W[N, K]ᵀ
template <typename S>
void matmul(const S* x, const S* w, S* y, int64_t T, int64_t N, int64_t K) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) {
      S acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += x[t * K + k] * w[n * K + k];
      y[t * N + n] = acc;
    }
}

// out[T, C] = x / sqrt(mean(x²) + eps) * w     (Zhang & Sennrich 2019)
template <typename S>
void rmsnorm(const S* x, const S* w, S* out, int64_t T, int64_t C, S eps) {
  for (int64_t t = 0; t < T; ++t) {
    S ss = 0;
    for (int64_t i = 0; i < C; ++i) ss += x[t * C + i] * x[t * C + i];
    S inv = S(1) / std::sqrt(ss / S(C) + eps);
    for (int64_t i = 0; i < C; ++i) out[t * C + i] = x[t * C + i] * inv * w[i];
  }
}

// Interleaved-pair RoPE on x[T, H*HD] in place: pair (2i, 2i+1) of each head at position p is
// rotated by angle p·freq[i].
template <typename S>
void rope(S* x, int64_t T, int64_t H, int64_t HD, int64_t pos0, const std::vector<double>& freq) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < HD / 2; ++i) {
        double a = double(pos0 + t) * freq[i];
        S c = S(std::cos(a)), s = S(std::sin(a));
        S* p = x + t * H * HD + h * HD + 2 * i;
        S x0 = p[0], x1 = p[1];
        p[0] = x0 * c - x1 * s;
        p[1] = x0 * s + x1 * c;
      }
}

// Causal GQA attention. q[T, NH*HD] for positions pos0..pos0+T-1; k, v[S, KV*HD] hold positions
// 0..S-1 (S >= pos0+T). out[T, NH*HD].
template <typename S>
void attention(const S* q, const S* k, const S* v, S* out, int64_t T, int64_t NH, int64_t KV,
               int64_t HD, int64_t pos0) {
  const int64_t group = NH / KV;
  const S scale = S(1) / std::sqrt(S(HD));
  std::vector<S> p;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < NH; ++h) {
      const int64_t g = h / group, n = pos0 + t + 1;
      p.assign(n, 0);
      S mx = -INFINITY;
      for (int64_t s = 0; s < n; ++s) {
        S d = 0;
        for (int64_t i = 0; i < HD; ++i)
          d += q[t * NH * HD + h * HD + i] * k[s * KV * HD + g * HD + i];
        p[s] = d * scale;
        mx = std::max(mx, p[s]);
      }
      S sum = 0;
      for (int64_t s = 0; s < n; ++s) sum += (p[s] = std::exp(p[s] - mx));
      for (int64_t i = 0; i < HD; ++i) {
        S acc = 0;
        for (int64_t s = 0; s < n; ++s) acc += p[s] / sum * v[s * KV * HD + g * HD + i];
        out[t * NH * HD + h * HD + i] = acc;
      }
    }
}

// out = silu(gate) * up, silu(z) = z / (1 + e^-z)   (Shazeer 2020, SwiGLU)
template <typename S>
void swiglu(const S* gate, const S* up, S* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (S(1) + std::exp(-gate[i])) * up[i];
}

// loss[t] = -log softmax(logits[t])[target[t]]
template <typename S>
void cross_entropy(const S* logits, const int32_t* target, S* loss, int64_t T, int64_t V) {
  for (int64_t t = 0; t < T; ++t) {
    S mx = -INFINITY;
    for (int64_t j = 0; j < V; ++j) mx = std::max(mx, logits[t * V + j]);
    S sum = 0;
    for (int64_t j = 0; j < V; ++j) sum += std::exp(logits[t * V + j] - mx);
    loss[t] = std::log(sum) + mx - logits[t * V + target[t]];
  }
}

}  // namespace edgellm::ref
