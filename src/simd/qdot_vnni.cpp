// The integer decode GEMV (simd.h "qdot") with 8-bit × 8-bit dot products: AVX512-VNNI's
// vpdpbusd multiplies 32 unsigned bytes by 32 signed bytes and adds each group of four products
// into an int32 lane, one instruction per 32 weights. The portable kernels (qdot_kernels.cpp)
// widen both operands to int16 first (pmaddwd: 16 products per 256 bits), and Highway 1.0.3 has
// no 8-bit dot-product op, so this file is per-ISA code: functions compiled for
// AVX512F/VL/BW/VNNI by target attribute and chosen at run time (qdot_kernel) only on CPUs that
// have them. 256-bit vectors: a Q8_0/Q4_0 block is exactly one, and Zen 4 splits 512-bit ops in
// two anyway.
//
// vpdpbusd needs one unsigned operand; the weights are made unsigned and the offset comes back
// through the activations' block sums (QuantX::s):
//   Q8_0: (w + 128)·x − 128·Σx;   Q4_0: q·x − 8·Σx (q the raw nibble);   Q4_K: nibbles are
//   unsigned already (its mins use Σx as in the portable kernel);   Q6_K: q·x − 32·Σx per 16
//   values (the sum by a second vpdpbusd of 32s, as QuantX sums per 32).
// Each block's int32 sum is exact, as in the portable kernels; only the fp32 scaling differs in
// order, so both agree with the reference to fp32 rounding (tests/simd).
#include <cstddef>
#include <cstdint>

#include "simd/simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "simd/x86_hsum.h"
#include "tensor/quant_blocks.h"

#define EDGELLM_VNNI __attribute__((target("avx512f,avx512vl,avx512bw,avx512vnni,fma,f16c")))

namespace edgellm::simd {
namespace {

EDGELLM_VNNI inline float f16(const uint8_t* p) {
  uint16_t h;
  __builtin_memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

using x86::hsum;

// An int32 vector holding v in lane 0 and zeros elsewhere: the starting value of a block's
// vpdpbusd, so that the block's offset term needs no extra instruction.
EDGELLM_VNNI inline __m256i lane0(int32_t v) {
  return _mm256_zextsi128_si256(_mm_cvtsi32_si128(v));
}

EDGELLM_VNNI inline __m256i load256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// Σ over the row's 32-value blocks of block(w_b, b) (an int32 vector whose lanes sum to the
// block's integer dot) times scale(w_b, b), four blocks in flight on four fp32 accumulators: one
// multiply-add chain (4-cycle latency) would bound the loop. Named accumulators, not an array
// indexed by b: that would live in memory.
template <size_t kBytes, class Block, class Scale>
EDGELLM_VNNI inline float four_chains(const uint8_t* w, int64_t n, const Block& block,
                                      const Scale& scale) {
  const int64_t nb = n / 32;
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  auto step = [&](__m256 acc, const uint8_t* wb, int64_t b) EDGELLM_VNNI {
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(block(wb, b)), _mm256_set1_ps(scale(wb, b)), acc);
  };
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4, w += 4 * kBytes) {
    a0 = step(a0, w, b);
    a1 = step(a1, w + kBytes, b + 1);
    a2 = step(a2, w + 2 * kBytes, b + 2);
    a3 = step(a3, w + 3 * kBytes, b + 3);
  }
  for (; b < nb; ++b, w += kBytes) a0 = step(a0, w, b);
  return hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

EDGELLM_VNNI float q8_0(const void* wv, const QuantX& x, int64_t n) {
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  return four_chains<sizeof(BlockQ8_0)>(
      static_cast<const uint8_t*>(wv), n,
      [&](const uint8_t* w, int64_t b) EDGELLM_VNNI {
        const __m256i u = _mm256_xor_si256(load256(w + 2), flip);  // w + 128 as unsigned bytes
        return _mm256_dpbusd_epi32(lane0(-128 * x.s[b]), u, load256(x.q + 32 * b));
      },
      [&](const uint8_t* w, int64_t b) EDGELLM_VNNI { return f16(w) * x.d[b]; });
}

// Q4_0: value k < 16 is the low nibble of qs[k], value 16 + k the high one.
EDGELLM_VNNI inline __m256i nibbles16(const uint8_t* qs) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m4 = _mm_set1_epi8(0x0f);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m4), _mm_and_si128(raw, m4));
}

EDGELLM_VNNI float q4_0(const void* wv, const QuantX& x, int64_t n) {
  return four_chains<sizeof(BlockQ4_0)>(
      static_cast<const uint8_t*>(wv), n,
      [&](const uint8_t* w, int64_t b) EDGELLM_VNNI {
        return _mm256_dpbusd_epi32(lane0(-8 * x.s[b]), nibbles16(w + 2), load256(x.q + 32 * b));
      },
      [&](const uint8_t* w, int64_t b) EDGELLM_VNNI { return f16(w) * x.d[b]; });
}

// Q4_K (256 values): sub-block j = dd·sc_j·q − dmin·m_j; sub-blocks 2c and 2c + 1 are the low and
// high nibbles of qs[32c .. 32c + 31].
EDGELLM_VNNI float q4_k(const void* wv, const QuantX& x, int64_t n) {
  const auto* w = static_cast<const uint8_t*>(wv);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  __m256 mins = _mm256_setzero_ps();  // Σ_j dmin·m_j · d_j·s_j, per sub-block lane
  for (int64_t sb = 0; sb < n / 256; ++sb, w += sizeof(BlockQ4_K)) {
    const float dd = f16(w), dmin = f16(w + 2);
    alignas(32) uint8_t sc[8], m[8];
    for (int j = 0; j < 8; ++j) q4k_scale_min(j, w + 4, &sc[j], &m[j]);
    const uint8_t* qs = w + 16;
    const int8_t* xq = x.q + 256 * sb;
    const float* xd = x.d + 8 * sb;
    for (int c = 0; c < 4; ++c) {
      const __m256i raw = load256(qs + 32 * c);
      const __m256i lo = _mm256_and_si256(raw, m4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
      const __m256i s0 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), lo, load256(xq + 64 * c));
      const __m256i s1 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), hi, load256(xq + 64 * c + 32));
      acc[0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0), _mm256_set1_ps(dd * sc[2 * c] * xd[2 * c]),
                               acc[0]);
      acc[1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s1),
                               _mm256_set1_ps(dd * sc[2 * c + 1] * xd[2 * c + 1]), acc[1]);
    }
    uint64_t m8;
    __builtin_memcpy(&m8, m, 8);
    const __m256 mj = _mm256_mul_ps(
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(m8)))),
        _mm256_set1_ps(dmin));
    const __m256 dsj =
        _mm256_mul_ps(_mm256_loadu_ps(xd), _mm256_cvtepi32_ps(load256(x.s + 8 * sb)));  // d_j·s_j
    mins = _mm256_fmadd_ps(mj, dsj, mins);
  }
  return hsum(_mm256_add_ps(acc[0], acc[1])) - hsum(mins);
}

// Q6_K (256 values): x = d·scale·(q − 32), one int8 scale per 16 values; in half h, group g
// (32 values) takes its low 4 bits from ql[64h + 32(g&1) + l] (low nibble for g < 2) and its high
// 2 bits from bits 2g of qh[32h + l] (tensor/quant_blocks.h q6k_get).
EDGELLM_VNNI float q6_k(const void* wv, const QuantX& x, int64_t n) {
  const auto* w = static_cast<const uint8_t*>(wv);
  const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x30);
  const __m256i c32 = _mm256_set1_epi8(32);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
  for (int64_t sb = 0; sb < n / 256; ++sb, w += sizeof(BlockQ6_K)) {
    const auto* sc = reinterpret_cast<const int8_t*>(w + 192);
    const float d = f16(w + 208);
    for (int h = 0; h < 2; ++h) {
      const __m256i la = load256(w + 64 * h), lb = load256(w + 64 * h + 32);
      const __m256i hb = load256(w + 128 + 32 * h);
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(la, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m2)),
          _mm256_or_si256(_mm256_and_si256(lb, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m2)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(la, 4), m4), _mm256_and_si256(hb, m2)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lb, 4), m4),
                          _mm256_and_si256(_mm256_srli_epi16(hb, 2), m2))};
      const int8_t* xq = x.q + 256 * sb + 128 * h;
      const float* xd = x.d + 8 * sb + 4 * h;
      const int8_t* sch = sc + 8 * h;  // group g: scales sch[2g] (values 0-15), sch[2g + 1]
      for (int g = 0; g < 4; ++g) {
        const __m256i xv = load256(xq + 32 * g);
        const __m256i s = _mm256_sub_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), q[g], xv),
                                           _mm256_dpbusd_epi32(_mm256_setzero_si256(), c32, xv));
        // Lanes 0-3 hold values 0-15 of the group, lanes 4-7 values 16-31.
        const float f = d * xd[g];
        const __m256 scale =
            _mm256_set_m128(_mm_set1_ps(f * sch[2 * g + 1]), _mm_set1_ps(f * sch[2 * g]));
        acc[g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), scale, acc[g]);
      }
    }
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

// F16C is not asked for: clang 14's __builtin_cpu_supports does not know the name, and every
// AVX-512 CPU has it (and FMA).
bool cpu_has_vnni() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni") &&
         __builtin_cpu_supports("fma");
}

}  // namespace

QdotFn qdot_vnni_kernel(DotKind k) {
  static const bool has = cpu_has_vnni();
  if (!has) return nullptr;
  switch (k) {
    case DotKind::Q8_0:
      return q8_0;
    case DotKind::Q4_0:
      return q4_0;
    case DotKind::Q4_K:
      return q4_k;
    case DotKind::Q6_K:
      return q6_k;
    case DotKind::F32:
    case DotKind::F16:
    case DotKind::BF16:
      break;
  }
  return nullptr;
}

}  // namespace edgellm::simd

#else  // not x86-64 GCC/Clang

namespace edgellm::simd {
QdotFn qdot_vnni_kernel(DotKind) { return nullptr; }
}  // namespace edgellm::simd

#endif
