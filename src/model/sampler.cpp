#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/activations.h"

namespace edgellm {

int32_t argmax(const float* x, int64_t n) {
  return static_cast<int32_t>(std::max_element(x, x + n) - x);
}

int32_t Sampler::sample(const float* logits, int64_t V) {
  if (cfg_.temperature <= 0.f) return argmax(logits, V);
  probs_.assign(logits, logits + V);
  softmax_inplace(probs_.data(), V, cfg_.temperature);
  idx_.resize(V);
  std::iota(idx_.begin(), idx_.end(), 0);
  int64_t n = V;
  const bool truncate = (cfg_.top_k > 0 && cfg_.top_k < V) || cfg_.top_p < 1.f;
  if (truncate) {
    // Sort candidates by probability (ties by id, for determinism), then cut to top-k and to the
    // smallest prefix whose mass reaches top-p.
    auto by_prob = [&](int32_t a, int32_t b) {
      return probs_[a] > probs_[b] || (probs_[a] == probs_[b] && a < b);
    };
    if (cfg_.top_k > 0 && cfg_.top_k < V) {
      n = cfg_.top_k;
      std::partial_sort(idx_.begin(), idx_.begin() + n, idx_.end(), by_prob);
    } else {
      std::sort(idx_.begin(), idx_.end(), by_prob);
    }
    if (cfg_.top_p < 1.f) {
      double cum = 0;
      int64_t keep = n;
      for (int64_t i = 0; i < n; ++i) {
        cum += probs_[idx_[i]];
        if (cum >= cfg_.top_p) {
          keep = i + 1;
          break;
        }
      }
      n = keep;
    }
  }
  double mass = 0;
  for (int64_t i = 0; i < n; ++i) mass += probs_[idx_[i]];
  const double r = rng_.uniform() * mass;
  double cum = 0;
  for (int64_t i = 0; i < n; ++i) {
    cum += probs_[idx_[i]];
    if (r < cum) return idx_[i];
  }
  return idx_[n - 1];
}

}  // namespace edgellm
