// Vectorised exp for the softmax / cross-entropy / SiLU loops. libm's exp is scalar and, in
// double, was the largest non-GEMM cost of a training step (3 exps per logit of a 32k
// vocabulary). Range reduction x = n·ln2 + r (|r| <= ln2/2, ln2 split in two for exactness),
// exp(r) by its degree-7 Taylor polynomial (truncation error < 1e-8 relative on that range),
// 2^n applied with scalef. Relative error ≤ ~2 ulp on [-87, 88]; below -87.3 it flushes through
// denormals to 0, above 88.73 it overflows to +inf (the tests check both ends against std::exp).
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>

namespace edgellm {

#if defined(__AVX512F__)
inline __m512 exp512(__m512 x) {
  const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
  const __m512 ln2_hi = _mm512_set1_ps(0.693359375f);
  const __m512 ln2_lo = _mm512_set1_ps(-2.12194440e-4f);
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(89.f)), _mm512_set1_ps(-104.f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT);
  __m512 r = _mm512_fnmadd_ps(n, ln2_hi, x);
  r = _mm512_fnmadd_ps(n, ln2_lo, r);
  // Horner: 1 + r + r²/2 + r³/6 + r⁴/24 + r⁵/120 + r⁶/720 + r⁷/5040
  __m512 p = _mm512_set1_ps(1.f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  return _mm512_scalef_ps(p, n);
}
#endif

// y[i] = exp(x[i]); y may alias x.
inline void exp_n(const float* x, float* y, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, exp512(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(y + i, m, exp512(_mm512_maskz_loadu_ps(m, x + i)));
    return;
  }
#endif
  for (; i < n; ++i) y[i] = std::exp(x[i]);
}

// Σ exp(x[i] - shift), accumulated in double per 16-lane block (the sum feeds a log).
inline double sum_exp_shifted(const float* x, int64_t n, float shift) {
  int64_t i = 0;
  double s = 0;
#if defined(__AVX512F__)
  const __m512 sh = _mm512_set1_ps(shift);
  for (; i + 16 <= n; i += 16)
    s += _mm512_reduce_add_ps(exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), sh)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    s += _mm512_mask_reduce_add_ps(m, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), sh)));
    return s;
  }
#endif
  for (; i < n; ++i) s += std::exp(x[i] - shift);
  return s;
}

// d[i] += scale · exp(x[i] − shift)   (the softmax-gradient row of cross-entropy)
inline void axpy_exp_shifted(float* d, const float* x, int64_t n, float shift, float scale) {
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512 sh = _mm512_set1_ps(shift), sc = _mm512_set1_ps(scale);
  for (; i + 16 <= n; i += 16) {
    const __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), sh));
    _mm512_storeu_ps(d + i, _mm512_fmadd_ps(sc, e, _mm512_loadu_ps(d + i)));
  }
#endif
  for (; i < n; ++i) d[i] += scale * std::exp(x[i] - shift);
}

// 1 / (1 + exp(−g)) for 16 lanes (SiLU's sigmoid).
#if defined(__AVX512F__)
inline __m512 sigmoid512(__m512 g) {
  const __m512 one = _mm512_set1_ps(1.f);
  return _mm512_div_ps(one, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), g))));
}
#endif

}  // namespace edgellm
