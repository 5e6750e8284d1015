// Next-token sampling: greedy (temperature 0), or temperature + top-k + top-p (nucleus,
// Holtzman et al. 2020) with a seeded deterministic RNG.
#pragma once

#include <cstdint>
#include <vector>

#include "util/rng.h"

namespace edgellm {

struct SamplerConfig {
  float temperature = 0.f;  // 0 = greedy
  int top_k = 0;            // 0 = off
  float top_p = 1.f;        // 1 = off
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(SamplerConfig cfg) : cfg_(cfg), rng_(cfg.seed) {}
  // Picks a token id from logits[V] (logits are not modified).
  int32_t sample(const float* logits, int64_t V);

 private:
  SamplerConfig cfg_;
  Rng rng_;
  std::vector<float> probs_;
  std::vector<int32_t> idx_;
};

int32_t argmax(const float* x, int64_t n);

}  // namespace edgellm
