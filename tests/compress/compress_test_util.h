// Random layers with correlated inputs, and the layer-output objective computed from X directly
// (not through the Hessian the compressors use).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "util/rng.h"

namespace edgellm::testing {

struct Layer {
  int64_t rows = 0, cols = 0, n = 0;
  std::vector<float> w;  // [rows, cols]
  std::vector<float> x;  // [n, cols] calibration inputs
};

// Inputs x = z·A with A a random mixing matrix (so columns are correlated) and per-column scales
// spread over two decades (as real activations have outlier channels); weights Gaussian.
inline Layer random_layer(int64_t rows, int64_t cols, int64_t n, uint64_t seed) {
  Rng rng(seed);
  Layer L{rows, cols, n, std::vector<float>(rows * cols), std::vector<float>(n * cols)};
  for (float& v : L.w) v = float(rng.normal());
  std::vector<double> A(cols * cols), colscale(cols);
  for (double& a : A) a = rng.normal() / std::sqrt(double(cols));
  for (int64_t j = 0; j < cols; ++j) {
    A[j * cols + j] += 1.0;
    colscale[j] = std::pow(10.0, 2.0 * rng.uniform() - 1.0);
  }
  std::vector<double> z(cols);
  for (int64_t t = 0; t < n; ++t) {
    for (double& v : z) v = rng.normal();
    for (int64_t j = 0; j < cols; ++j) {
      double s = 0;
      for (int64_t k = 0; k < cols; ++k) s += z[k] * A[k * cols + j];
      L.x[t * cols + j] = float(s * colscale[j]);
    }
  }
  return L;
}

// ‖X·Wᵀ − X·Ŵᵀ‖² (sum over calibration rows and outputs), in double.
inline double output_error(const Layer& L, const std::vector<float>& w_hat) {
  double e = 0;
  for (int64_t t = 0; t < L.n; ++t)
    for (int64_t r = 0; r < L.rows; ++r) {
      double d = 0;
      for (int64_t k = 0; k < L.cols; ++k)
        d += double(L.x[t * L.cols + k]) * (double(L.w[r * L.cols + k]) - w_hat[r * L.cols + k]);
      e += d * d;
    }
  return e;
}

}  // namespace edgellm::testing
