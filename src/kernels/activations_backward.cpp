// Backward of the element-wise and row-wise kernels of activations.h.
#include <algorithm>
#include <cmath>

#include "kernels/activations.h"
#include "kernels/vexp.h"

namespace edgellm {

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n) {
  // d silu/dg = s + g·s·(1 − s), s = sigmoid(g); in chunks (a multiple of every vector width)
  // that are the unit of parallel work.
  constexpr int64_t kChunk = 4096;
  const int64_t nchunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t i = c * kChunk;
    simd::swiglu_backward(dgate + i, dup + i, dout + i, gate + i, up + i, std::min(kChunk, n - i));
  }
}

void cross_entropy_backward(float* dlogits, const float* dloss, const float* logits,
                            const int32_t* target, int64_t T, int64_t V) {
#pragma omp parallel for schedule(static) if (T > 1)
  for (int64_t t = 0; t < T; ++t) {
    if (target[t] < 0) continue;
    const float* l = logits + t * V;
    float* d = dlogits + t * V;
    const float mx = *std::max_element(l, l + V);
    const double sum = sum_exp_shifted(l, V, mx);
    // d += g · softmax(l):  g · exp(l − mx) / Σ
    axpy_exp_shifted(d, l, V, mx, static_cast<float>(dloss[t] / sum));
    d[target[t]] -= dloss[t];
  }
}

void bias_backward(float* db, const float* dy, int64_t T, int64_t n) {
  if (!db) return;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < n; ++i) db[i] += dy[t * n + i];
}

void embedding_backward(float* dE, const float* dx, const int32_t* tokens, int64_t T, int64_t C) {
  for (int64_t t = 0; t < T; ++t) {
    float* row = dE + static_cast<int64_t>(tokens[t]) * C;
    const float* d = dx + t * C;
    for (int64_t i = 0; i < C; ++i) row[i] += d[i];
  }
}

}  // namespace edgellm
