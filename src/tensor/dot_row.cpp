// dot(decode(row), x) for every storage type: the inner loop of the decode-time GEMV over stored
// weights. Each type has an AVX-512 kernel that unpacks codes straight into fp32 lanes (no
// temporary row), and every type shares one portable fallback (decode a block into a stack buffer,
// then dot) that is also the reference the tests compare against (dot_row_ref).
//
// Numerics: the fast kernels multiply codes by x in fp32 and apply each (sub-)block scale once
// to the partial sum, so they differ from decode-then-dot only by rounding order.
#include <cstring>

#include "tensor/dtype.h"
#include "tensor/quant_blocks.h"
#include "util/error.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define EDGELLM_DOT_AVX512 1
#include <immintrin.h>
#endif

namespace edgellm {

float dot_row_ref(DType t, const void* row, const float* x, int64_t n) {
  // Decode in chunks of whole blocks (256 values = one K-quant super-block, 8 Q8_0 blocks).
  const int64_t chunk = 256;
  const size_t chunk_bytes = dtype_row_bytes(t, chunk);
  const auto* p = static_cast<const uint8_t*>(row);
  float buf[256];
  double acc = 0.0;
  for (int64_t i = 0; i < n; i += chunk) {
    const int64_t m = n - i < chunk ? n - i : chunk;
    decode_row(t, p + static_cast<size_t>(i / chunk) * chunk_bytes, buf, m);
    for (int64_t j = 0; j < m; ++j) acc += static_cast<double>(buf[j]) * x[i + j];
  }
  return static_cast<float>(acc);
}

#if EDGELLM_DOT_AVX512
namespace {

inline float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline __m512 cvt(__m512i v) { return _mm512_cvtepi32_ps(v); }
inline __m512i u8x16(const uint8_t* p) {
  return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

float dot_f32(const float* w, const float* x, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? 0xffff : static_cast<__mmask16>((1u << (n - i)) - 1);
    a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + i), _mm512_maskz_loadu_ps(m, x + i), a0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

template <bool kBF16>
float dot_half(const uint8_t* w, const float* x, int64_t n) {
  auto widen = [](__m256i h) {
    if constexpr (kBF16)
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    else
      return _mm512_cvtph_ps(h);
  };
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm512_fmadd_ps(widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 2 * i))),
                         _mm512_loadu_ps(x + i), a0);
    a1 =
        _mm512_fmadd_ps(widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 2 * i + 32))),
                        _mm512_loadu_ps(x + i + 16), a1);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? 0xffff : static_cast<__mmask16>((1u << (n - i)) - 1);
    a0 = _mm512_fmadd_ps(widen(_mm256_maskz_loadu_epi16(m, w + 2 * i)),
                         _mm512_maskz_loadu_ps(m, x + i), a0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

float dot_q8_0(const uint8_t* w, const float* x, int64_t nb) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; ++i, w += sizeof(BlockQ8_0), x += 32) {
    const __m128i* q = reinterpret_cast<const __m128i*>(w + 2);
    __m512 s = _mm512_mul_ps(cvt(_mm512_cvtepi8_epi32(_mm_loadu_si128(q))), _mm512_loadu_ps(x));
    s = _mm512_fmadd_ps(cvt(_mm512_cvtepi8_epi32(_mm_loadu_si128(q + 1))), _mm512_loadu_ps(x + 16),
                        s);
    acc = _mm512_fmadd_ps(_mm512_set1_ps(f16_at(w)), s, acc);
  }
  return _mm512_reduce_add_ps(acc);
}

float dot_q4_0(const uint8_t* w, const float* x, int64_t nb) {
  const __m512i mask = _mm512_set1_epi32(0xf), eight = _mm512_set1_epi32(8);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; ++i, w += sizeof(BlockQ4_0), x += 32) {
    const __m512i b = u8x16(w + 2);
    const __m512i lo = _mm512_sub_epi32(_mm512_and_si512(b, mask), eight);
    const __m512i hi = _mm512_sub_epi32(_mm512_srli_epi32(b, 4), eight);
    __m512 s = _mm512_mul_ps(cvt(lo), _mm512_loadu_ps(x));
    s = _mm512_fmadd_ps(cvt(hi), _mm512_loadu_ps(x + 16), s);
    acc = _mm512_fmadd_ps(_mm512_set1_ps(f16_at(w)), s, acc);
  }
  return _mm512_reduce_add_ps(acc);
}

// x = d*sc*q - dmin*m  =>  dot = sum_sub d*sc*(q . x_sub) - dmin*m*sum(x_sub).
float dot_q4_k(const uint8_t* w, const float* x, int64_t nb) {
  const __m512i mask = _mm512_set1_epi32(0xf);
  __m512 acc = _mm512_setzero_ps(), accm = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; ++i, w += sizeof(BlockQ4_K), x += 256) {
    const float d = f16_at(w), dmin = f16_at(w + 2);
    const uint8_t* scales = w + 4;
    const uint8_t* qs = w + 16;
    for (int j = 0; j < 4; ++j) {
      uint8_t sc0, m0, sc1, m1;
      q4k_scale_min(2 * j, scales, &sc0, &m0);
      q4k_scale_min(2 * j + 1, scales, &sc1, &m1);
      const float* xj = x + 64 * j;
      const __m512i b0 = u8x16(qs + 32 * j), b1 = u8x16(qs + 32 * j + 16);
      const __m512 xl0 = _mm512_loadu_ps(xj), xl1 = _mm512_loadu_ps(xj + 16);
      const __m512 xh0 = _mm512_loadu_ps(xj + 32), xh1 = _mm512_loadu_ps(xj + 48);
      __m512 sl = _mm512_mul_ps(cvt(_mm512_and_si512(b0, mask)), xl0);
      sl = _mm512_fmadd_ps(cvt(_mm512_and_si512(b1, mask)), xl1, sl);
      __m512 sh = _mm512_mul_ps(cvt(_mm512_srli_epi32(b0, 4)), xh0);
      sh = _mm512_fmadd_ps(cvt(_mm512_srli_epi32(b1, 4)), xh1, sh);
      acc = _mm512_fmadd_ps(_mm512_set1_ps(d * sc0), sl, acc);
      acc = _mm512_fmadd_ps(_mm512_set1_ps(d * sc1), sh, acc);
      accm = _mm512_fmadd_ps(_mm512_set1_ps(dmin * m0), _mm512_add_ps(xl0, xl1), accm);
      accm = _mm512_fmadd_ps(_mm512_set1_ps(dmin * m1), _mm512_add_ps(xh0, xh1), accm);
    }
  }
  return _mm512_reduce_add_ps(_mm512_sub_ps(acc, accm));
}

float dot_q6_k(const uint8_t* w, const float* x, int64_t nb) {
  const __m512i m4 = _mm512_set1_epi32(0xf), m2 = _mm512_set1_epi32(3), off = _mm512_set1_epi32(32);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; ++i, w += sizeof(BlockQ6_K), x += 256) {
    const uint8_t* ql0 = w;
    const uint8_t* qh0 = w + 128;
    const auto* sc0 = reinterpret_cast<const int8_t*>(w + 192);
    const float d = f16_at(w + 208);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = ql0 + 64 * h;
      const uint8_t* qh = qh0 + 32 * h;
      const int8_t* sc = sc0 + 8 * h;
      const float* y = x + 128 * h;
      for (int l0 = 0; l0 < 32; l0 += 16) {
        const __m512i a = u8x16(ql + l0), b = u8x16(ql + 32 + l0), hb = u8x16(qh + l0);
        auto code = [&](__m512i low4, int shift) {
          const __m512i hi2 = _mm512_and_si512(_mm512_srli_epi32(hb, shift), m2);
          return cvt(_mm512_sub_epi32(_mm512_or_si512(low4, _mm512_slli_epi32(hi2, 4)), off));
        };
        const int is = l0 / 16;
        const __m512 q1 = code(_mm512_and_si512(a, m4), 0);
        const __m512 q2 = code(_mm512_and_si512(b, m4), 2);
        const __m512 q3 = code(_mm512_srli_epi32(a, 4), 4);
        const __m512 q4 = code(_mm512_srli_epi32(b, 4), 6);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d * sc[is]),
                              _mm512_mul_ps(q1, _mm512_loadu_ps(y + l0)), acc);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d * sc[is + 2]),
                              _mm512_mul_ps(q2, _mm512_loadu_ps(y + 32 + l0)), acc);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d * sc[is + 4]),
                              _mm512_mul_ps(q3, _mm512_loadu_ps(y + 64 + l0)), acc);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d * sc[is + 6]),
                              _mm512_mul_ps(q4, _mm512_loadu_ps(y + 96 + l0)), acc);
      }
    }
  }
  return _mm512_reduce_add_ps(acc);
}

}  // namespace
#endif  // EDGELLM_DOT_AVX512

float dot_row(DType t, const void* row, const float* x, int64_t n) {
#if EDGELLM_DOT_AVX512
  const auto* w = static_cast<const uint8_t*>(row);
  switch (t) {
    case DType::F32:
      return dot_f32(reinterpret_cast<const float*>(w), x, n);  // loadu: any alignment
    case DType::F16:
      return dot_half<false>(w, x, n);
    case DType::BF16:
      return dot_half<true>(w, x, n);
    case DType::Q8_0:
      EDGELLM_CHECK(n % 32 == 0, "dot_row q8_0: n={}", n);
      return dot_q8_0(w, x, n / 32);
    case DType::Q4_0:
      EDGELLM_CHECK(n % 32 == 0, "dot_row q4_0: n={}", n);
      return dot_q4_0(w, x, n / 32);
    case DType::Q4_K:
      EDGELLM_CHECK(n % 256 == 0, "dot_row q4_k: n={}", n);
      return dot_q4_k(w, x, n / 256);
    case DType::Q6_K:
      EDGELLM_CHECK(n % 256 == 0, "dot_row q6_k: n={}", n);
      return dot_q6_k(w, x, n / 256);
    case DType::I32:
    case DType::U8:
    case DType::Packed:  // dot_row_ref -> decode_row refuses it
      break;
  }
#endif
  return dot_row_ref(t, row, x, n);
}

}  // namespace edgellm
