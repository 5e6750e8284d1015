// Backward of the element-wise and row-wise kernels of activations.h.
#include <algorithm>
#include <cmath>

#include "kernels/activations.h"
#include "kernels/vexp.h"

namespace edgellm {

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n) {
  // d silu/dg = s + g·s·(1 − s), s = sigmoid(g)
  int64_t head = 0;  // elements done 16 at a time
#if defined(__AVX512F__)
  head = n / 16 * 16;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < head; i += 16) {
    const __m512 g = _mm512_loadu_ps(gate + i), u = _mm512_loadu_ps(up + i);
    const __m512 d = _mm512_loadu_ps(dout + i), sg = sigmoid512(g), one = _mm512_set1_ps(1.f);
    const __m512 dsilu = _mm512_mul_ps(sg, _mm512_fmadd_ps(g, _mm512_sub_ps(one, sg), one));
    _mm512_storeu_ps(dgate + i,
                     _mm512_fmadd_ps(_mm512_mul_ps(d, u), dsilu, _mm512_loadu_ps(dgate + i)));
    _mm512_storeu_ps(dup + i, _mm512_fmadd_ps(d, _mm512_mul_ps(g, sg), _mm512_loadu_ps(dup + i)));
  }
#endif
  for (int64_t i = head; i < n; ++i) {
    const float g = gate[i];
    const float s = 1.f / (1.f + std::exp(-g));
    dgate[i] += dout[i] * up[i] * s * (1.f + g * (1.f - s));
    dup[i] += dout[i] * g * s;
  }
}

void cross_entropy_backward(float* dlogits, const float* dloss, const float* logits,
                            const int32_t* target, int64_t T, int64_t V) {
#pragma omp parallel for schedule(static) if (T > 1)
  for (int64_t t = 0; t < T; ++t) {
    if (target[t] < 0) continue;
    const float* l = logits + t * V;
    float* d = dlogits + t * V;
    const float mx = *std::max_element(l, l + V);
    const double sum = sum_exp_shifted(l, V, mx);
    // d += g · softmax(l):  g · exp(l − mx) / Σ
    axpy_exp_shifted(d, l, V, mx, static_cast<float>(dloss[t] / sum));
    d[target[t]] -= dloss[t];
  }
}

void bias_backward(float* db, const float* dy, int64_t T, int64_t n) {
  if (!db) return;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < n; ++i) db[i] += dy[t * n + i];
}

void embedding_backward(float* dE, const float* dx, const int32_t* tokens, int64_t T, int64_t C) {
  for (int64_t t = 0; t < T; ++t) {
    float* row = dE + static_cast<int64_t>(tokens[t]) * C;
    const float* d = dx + t * C;
    for (int64_t i = 0; i < C; ++i) row[i] += d[i];
  }
}

}  // namespace edgellm
