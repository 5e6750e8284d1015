// Backward of the element-wise and row-wise kernels of activations.h.
#include <algorithm>
#include <cmath>

#include "kernels/activations.h"

namespace edgellm {

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    const float s = 1.f / (1.f + std::exp(-g));
    const float silu = g * s;
    // d silu/dg = s + g·s·(1 − s)
    dgate[i] += dout[i] * up[i] * s * (1.f + g * (1.f - s));
    dup[i] += dout[i] * silu;
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
    double sum = 0;
    for (int64_t j = 0; j < V; ++j) sum += std::exp(double(l[j] - mx));
    const float inv = static_cast<float>(1.0 / sum), g = dloss[t];
    for (int64_t j = 0; j < V; ++j) d[j] += g * std::exp(l[j] - mx) * inv;
    d[target[t]] -= g;
  }
}

void embedding_backward(float* dE, const float* dx, const int32_t* tokens, int64_t T, int64_t C) {
  for (int64_t t = 0; t < T; ++t) {
    float* row = dE + static_cast<int64_t>(tokens[t]) * C;
    const float* d = dx + t * C;
    for (int64_t i = 0; i < C; ++i) row[i] += d[i];
  }
}

}  // namespace edgellm
