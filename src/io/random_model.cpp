// Random-weight models for tests and benchmarks (make-model). Rows are generated independently
// from a counter-based RNG (splitmix64 of seed, tensor-name hash and row) so generation is
// parallel, streamable and deterministic whatever the thread count or output format.
#include <cmath>

#include "io/model_writer.h"

namespace edgellm {

namespace {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Box-Muller over 53-bit uniforms: two N(0,1) per pair of draws.
void normal_row(uint64_t key, float stddev, float* dst, int64_t n) {
  uint64_t state = key;
  for (int64_t i = 0; i < n; i += 2) {
    state = splitmix64(state);
    const double u1 = (static_cast<double>(state >> 11) + 1.0) * 0x1p-53;  // (0, 1]
    state = splitmix64(state);
    const double u2 = static_cast<double>(state >> 11) * 0x1p-53;
    const double r = std::sqrt(-2.0 * std::log(u1)), a = 2.0 * M_PI * u2;
    dst[i] = static_cast<float>(stddev * r * std::cos(a));
    if (i + 1 < n) dst[i + 1] = static_cast<float>(stddev * r * std::sin(a));
  }
}

}  // namespace

ModelSource random_source(uint64_t seed, float stddev) {
  return random_source(seed, [stddev](const TensorSpec&) { return stddev; });
}

ModelSource random_source(uint64_t seed, std::function<float(const TensorSpec&)> stddev_of) {
  return [seed, stddev_of](const TensorSpec& s) {
    TensorSource t;
    const float stddev = stddev_of(s);
    const int64_t cols = s.shape.back();
    if (s.role == TensorRole::Norm) {
      t.gen = [cols](int64_t, float* dst) { std::fill(dst, dst + cols, 1.f); };
    } else {
      const uint64_t key = splitmix64(seed ^ fnv1a(s.name));
      t.gen = [key, cols, stddev](int64_t row, float* dst) {
        normal_row(splitmix64(key + static_cast<uint64_t>(row)), stddev, dst, cols);
      };
    }
    return t;
  };
}

ModelSource pretrain_init_source(uint64_t seed, int n_layers, float stddev) {
  const float scaled = stddev / std::sqrt(2.f * static_cast<float>(n_layers));
  return random_source(seed, [=](const TensorSpec& s) {
    const bool residual_out =
        s.name.find("o_proj") != std::string::npos || s.name.find("down_proj") != std::string::npos;
    // Biases start at zero, as in every reference initialisation.
    if (s.role == TensorRole::Bias) return 0.f;
    return residual_out ? scaled : stddev;
  });
}

}  // namespace edgellm
