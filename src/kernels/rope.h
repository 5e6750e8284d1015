// Rotary position embedding (Su et al. 2021) in the interleaved-pair layout: pair (2i, 2i+1) of
// each head is rotated by angle pos·freq[i], freq[i] = theta^(-2i/HD), optionally rescaled by
// Llama-3's frequency-dependent rule (rope_scaling.rope_type = "llama3").
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace edgellm {

class RopeTable {
 public:
  RopeTable() = default;
  RopeTable(int head_dim, float theta, const RopeScaling& scaling);
  // Makes cos/sin available for positions [0, n). Grows geometrically; not thread-safe.
  void ensure(int64_t n);
  const float* cos_at(int64_t pos) const { return cos_.data() + pos * (head_dim_ / 2); }
  const float* sin_at(int64_t pos) const { return sin_.data() + pos * (head_dim_ / 2); }
  const std::vector<double>& freqs() const { return freq_; }
  // Bytes of the tables as allocated now (a training run's plan counts them).
  size_t bytes() const {
    return (cos_.capacity() + sin_.capacity()) * sizeof(float) + freq_.capacity() * sizeof(double);
  }
  int head_dim() const { return head_dim_; }

 private:
  int head_dim_ = 0;
  std::vector<double> freq_;      // [HD/2]
  std::vector<float> cos_, sin_;  // [n, HD/2]
  int64_t n_ = 0;
};

// Llama-3 rescaled inverse frequencies (public formula from Meta's llama3 reference).
std::vector<double> rope_frequencies(int head_dim, float theta, const RopeScaling& scaling);

// x[T, H*HD] rotated in place for positions pos0..pos0+T-1 (table must cover them).
void rope_forward(float* x, const RopeTable& table, int64_t T, int64_t H, int64_t pos0);

// Backward of rope_forward. RoPE is an orthogonal rotation per pair, so its vector-Jacobian
// product is the rotation by the opposite angle, applied in place to the gradient d[T, H*HD].
void rope_backward(float* d, const RopeTable& table, int64_t T, int64_t H, int64_t pos0);

}  // namespace edgellm
