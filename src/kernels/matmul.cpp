#include "kernels/matmul.h"

#include <dnnl.h>
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels/gemm_bf16.h"
#include "kernels/packed_matmul.h"
#include "util/error.h"

namespace edgellm {

WeightView WeightView::f32(const float* w, int64_t rows, int64_t cols) {
  WeightView v;
  v.dtype = DType::F32;
  v.data = reinterpret_cast<const uint8_t*>(w);
  v.rows = rows;
  v.cols = cols;
  v.row_bytes = static_cast<size_t>(cols) * sizeof(float);
  return v;
}

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B,
                                ldb, beta, C, ldc);
  if (st != dnnl_success)
    fail("[sgemm] oneDNN failed (status {}) for M={} N={} K={}", int(st), M, N, K);
}

namespace {

// 4 fp32 rows · x at once: x is loaded once per 4 rows, 4 independent accumulator chains hide FMA
// latency. Returns the 4 dot products in out[0..3].
inline void dot4_f32(const float* r0, const float* r1, const float* r2, const float* r3,
                     const float* x, int64_t n, float* out) {
  int64_t i = 0;
#if defined(__AVX512F__)
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(),
         a3 = _mm512_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    __m512 xv = _mm512_loadu_ps(x + i);
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(r0 + i), xv, a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(r1 + i), xv, a1);
    a2 = _mm512_fmadd_ps(_mm512_loadu_ps(r2 + i), xv, a2);
    a3 = _mm512_fmadd_ps(_mm512_loadu_ps(r3 + i), xv, a3);
  }
  float s0 = _mm512_reduce_add_ps(a0), s1 = _mm512_reduce_add_ps(a1), s2 = _mm512_reduce_add_ps(a2),
        s3 = _mm512_reduce_add_ps(a3);
#else
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#endif
  for (; i < n; ++i) {
    s0 += r0[i] * x[i];
    s1 += r1[i] * x[i];
    s2 += r2[i] * x[i];
    s3 += r3[i] * x[i];
  }
  out[0] = s0;
  out[1] = s1;
  out[2] = s2;
  out[3] = s3;
}

inline float dot1_f32(const float* r, const float* x, int64_t n) {
  int64_t i = 0;
  float s = 0;
#if defined(__AVX512F__)
  __m512 a = _mm512_setzero_ps();
  for (; i + 16 <= n; i += 16)
    a = _mm512_fmadd_ps(_mm512_loadu_ps(r + i), _mm512_loadu_ps(x + i), a);
  s = _mm512_reduce_add_ps(a);
#endif
  for (; i < n; ++i) s += r[i] * x[i];
  return s;
}

// Below this many weights a GEMV is done by one thread: waking the pool costs more than it saves.
constexpr int64_t kParallelMinWeights = 1 << 16;

void gemv(const float* x, const WeightView& w, float* y, bool accumulate) {
  const int64_t N = w.rows, K = w.cols;
  const bool par = N * K >= kParallelMinWeights;
  if (w.dtype == DType::F32) {
    const int64_t nblk = (N + 3) / 4;
#pragma omp parallel for schedule(static) if (par)
    for (int64_t b = 0; b < nblk; ++b) {
      int64_t r = b * 4;
      float out[4];
      if (r + 4 <= N) {
        dot4_f32(reinterpret_cast<const float*>(w.row(r)),
                 reinterpret_cast<const float*>(w.row(r + 1)),
                 reinterpret_cast<const float*>(w.row(r + 2)),
                 reinterpret_cast<const float*>(w.row(r + 3)), x, K, out);
      } else {
        for (int64_t j = 0; j < N - r; ++j)
          out[j] = dot1_f32(reinterpret_cast<const float*>(w.row(r + j)), x, K);
      }
      for (int64_t j = 0; j < std::min<int64_t>(4, N - r); ++j)
        y[r + j] = accumulate ? y[r + j] + out[j] : out[j];
    }
    return;
  }
#pragma omp parallel for schedule(static) if (par)
  for (int64_t r = 0; r < N; ++r) {
    float v = dot_row(w.dtype, w.row(r), x, K);
    y[r] = accumulate ? y[r] + v : v;
  }
}

// Rows decoded per tile for the T > 1 path of non-F32 weights: 64 rows × K fp32 stays in L2
// for K up to ~2k, and 64 is a multiple of every GEMM micro-kernel width.
constexpr int64_t kTileRows = 64;

}  // namespace

void matmul(const float* x, const WeightView& w, float* y, int64_t T, bool accumulate) {
  if (w.dtype == DType::Packed) {
    packed_matmul(x, w.packed, y, T, accumulate);
    return;
  }
  EDGELLM_CHECK(w.data != nullptr && w.rows > 0 && w.cols > 0, "empty weight {}x{}", w.rows,
                w.cols);
  if (T == 1) {
    gemv(x, w, y, accumulate);
    return;
  }
  const int64_t N = w.rows, K = w.cols;
  const float beta = accumulate ? 1.f : 0.f;
  if (w.dtype == DType::F32) {
    sgemm(false, true, T, N, K, 1.f, x, K, reinterpret_cast<const float*>(w.data),
          static_cast<int64_t>(w.row_bytes / sizeof(float)), beta, y, N);
    return;
  }
  if (w.dtype == DType::BF16) {  // bf16 × bf16 → fp32 on the stored weights, no decode
    gemm_bf16(x, reinterpret_cast<const uint16_t*>(w.data), y, T, N, K, /*trans_w=*/true,
              accumulate);
    return;
  }
  std::vector<float> tile(static_cast<size_t>(kTileRows * K));
  for (int64_t r0 = 0; r0 < N; r0 += kTileRows) {
    const int64_t nr = std::min(kTileRows, N - r0);
#pragma omp parallel for schedule(static) if (nr * K >= kParallelMinWeights)
    for (int64_t r = 0; r < nr; ++r) decode_row(w.dtype, w.row(r0 + r), tile.data() + r * K, K);
    sgemm(false, true, T, nr, K, 1.f, x, K, tile.data(), K, beta, y + r0, N);
  }
}

}  // namespace edgellm
