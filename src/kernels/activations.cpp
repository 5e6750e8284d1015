#include "kernels/activations.h"

#include <algorithm>
#include <cmath>

#include "kernels/vexp.h"

namespace edgellm {

// Chunks of this many elements are the unit of parallel work (a multiple of every vector width).
constexpr int64_t kChunk = 4096;

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) {
  const int64_t nchunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t i = c * kChunk;
    simd::swiglu(out + i, gate + i, up + i, std::min(kChunk, n - i));
  }
}

void add_inplace(float* x, const float* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void bias_forward(float* y, const float* b, int64_t T, int64_t n) {
  if (!b) return;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < n; ++i) y[t * n + i] += b[i];
}

void cross_entropy_forward(float* loss, const float* logits, const int32_t* target, int64_t T,
                           int64_t V) {
#pragma omp parallel for schedule(static) if (T * V >= (1 << 16))
  for (int64_t t = 0; t < T; ++t) {
    if (target[t] < 0) {
      loss[t] = 0;
      continue;
    }
    const float* l = logits + t * V;
    const float mx = *std::max_element(l, l + V);
    // Partial sums in double: V is up to 150k and the loss is what perplexity reports.
    const double sum = sum_exp_shifted(l, V, mx);
    loss[t] = static_cast<float>(std::log(sum) + mx - l[target[t]]);
  }
}

void softmax_inplace(float* x, int64_t n, float temperature) {
  const float inv_t = 1.f / temperature;
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i] * inv_t);
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] * inv_t - mx;
  exp_n(x, x, n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace edgellm
