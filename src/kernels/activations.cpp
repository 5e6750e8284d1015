#include "kernels/activations.h"

#include <algorithm>
#include <cmath>

namespace edgellm {

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.f + std::exp(-g)) * up[i];
  }
}

void add_inplace(float* x, const float* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
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
    // Sum in double: V is up to 150k and the loss is what perplexity reports.
    double sum = 0;
    for (int64_t j = 0; j < V; ++j) sum += std::exp(double(l[j] - mx));
    loss[t] = static_cast<float>(std::log(sum) + mx - l[target[t]]);
  }
}

void softmax_inplace(float* x, int64_t n, float temperature) {
  const float inv_t = 1.f / temperature;
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i] * inv_t);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] * inv_t - mx));
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace edgellm
