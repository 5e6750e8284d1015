// Vectorised exp for the softmax / cross-entropy / SiLU loops: libm's exp is scalar and, in
// double, was the largest non-GEMM cost of a training step (3 exps per logit of a 32k
// vocabulary). The kernels are in src/simd/vec_kernels.cpp (dispatched to the CPU's best SIMD
// target); these names are the kernels module's view of them. Relative error <= ~2 ulp on
// [-87, 88]; below -87.3 results flush through denormals to 0, above 88.73 they overflow to +inf
// (the tests check both ends against std::exp).
#pragma once

#include <cstdint>

#include "simd/simd.h"

namespace edgellm {

// y[i] = exp(x[i]); y may alias x.
inline void exp_n(const float* x, float* y, int64_t n) { simd::exp_n(x, y, n); }

// sum exp(x[i] - shift), fp32 partial sums of <= 256 terms added in double (the sum feeds a log).
inline double sum_exp_shifted(const float* x, int64_t n, float shift) {
  return simd::sum_exp_shifted(x, n, shift);
}

// d[i] += scale * exp(x[i] - shift)   (the softmax-gradient row of cross-entropy)
inline void axpy_exp_shifted(float* d, const float* x, int64_t n, float shift, float scale) {
  simd::axpy_exp_shifted(d, x, n, shift, scale);
}

}  // namespace edgellm
