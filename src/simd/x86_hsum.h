// The horizontal sums shared by the per-ISA x86 files (qdot_vnni.cpp, packed_vnni.cpp). Compiled
// for AVX (and AVX512F/DQ) only, so they inline into their functions, whose targets are supersets.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

namespace edgellm::simd::x86 {

__attribute__((target("avx"))) inline float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

// extract, not _mm512_castps512_ps256: GCC 12 warns about the cast (-Wuninitialized, its header),
// and about _mm512_extractf64x4_pd.
__attribute__((target("avx512f,avx512dq"))) inline float hsum512(__m512 v) {
  return hsum(_mm256_add_ps(_mm512_extractf32x8_ps(v, 0), _mm512_extractf32x8_ps(v, 1)));
}

}  // namespace edgellm::simd::x86

#endif
