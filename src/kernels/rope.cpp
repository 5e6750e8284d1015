#include "kernels/rope.h"

#include <cmath>

#include "simd/simd.h"

namespace edgellm {

std::vector<double> rope_frequencies(int head_dim, float theta, const RopeScaling& sc) {
  const double pi = 3.14159265358979323846;
  std::vector<double> f(head_dim / 2);
  for (int i = 0; i < head_dim / 2; ++i) {
    double freq = 1.0 / std::pow(double(theta), double(2 * i) / double(head_dim));
    if (sc.enabled) {
      // Long wavelengths are stretched by `factor`, short ones kept, a linear blend between.
      const double old_ctx = sc.original_max_position_embeddings;
      const double low_wavelen = old_ctx / sc.low_freq_factor;
      const double high_wavelen = old_ctx / sc.high_freq_factor;
      const double wavelen = 2 * pi / freq;
      if (wavelen > low_wavelen) {
        freq = freq / sc.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth =
            (old_ctx / wavelen - sc.low_freq_factor) / (sc.high_freq_factor - sc.low_freq_factor);
        freq = (1 - smooth) * freq / sc.factor + smooth * freq;
      }
    }
    f[i] = freq;
  }
  return f;
}

RopeTable::RopeTable(int head_dim, float theta, const RopeScaling& scaling)
    : head_dim_(head_dim), freq_(rope_frequencies(head_dim, theta, scaling)) {}

void RopeTable::ensure(int64_t n) {
  if (n <= n_) return;
  int64_t target = n_ == 0 ? n : n_;
  while (target < n) target *= 2;
  const int64_t half = head_dim_ / 2;
  cos_.resize(target * half);
  sin_.resize(target * half);
  for (int64_t p = n_; p < target; ++p)
    for (int64_t i = 0; i < half; ++i) {
      const double a = double(p) * freq_[i];
      cos_[p * half + i] = static_cast<float>(std::cos(a));
      sin_[p * half + i] = static_cast<float>(std::sin(a));
    }
  n_ = target;
}

void rope_forward(float* x, const RopeTable& table, int64_t T, int64_t H, int64_t pos0) {
  const int64_t HD = table.head_dim(), half = HD / 2;
#pragma omp parallel for schedule(static) if (T * H * table.head_dim() >= (1 << 15))
  for (int64_t t = 0; t < T; ++t) {
    const float* c = table.cos_at(pos0 + t);
    const float* s = table.sin_at(pos0 + t);
    for (int64_t h = 0; h < H; ++h) {
      simd::rope_pairs(x + (t * H + h) * HD, c, s, half);
    }
  }
}

}  // namespace edgellm
