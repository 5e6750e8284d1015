// The integer decode GEMV (simd.h "qdot") with 8-bit × 8-bit dot products: AVX512-VNNI's
// vpdpbusd multiplies 32 unsigned bytes by 32 signed bytes and adds each group of four products
// into an int32 lane, one instruction per 32 weights. The portable kernels (qdot_kernels.cpp)
// widen both operands to int16 first (pmaddwd: 16 products per 256 bits), and Highway 1.0.3 has
// no 8-bit dot-product op, so this file is per-ISA code: functions compiled for
// AVX512F/VL/BW/VNNI by target attribute and chosen at run time (qdot_kernel) only on CPUs that
// have them. 512-bit vectors, two 32-value blocks (or one Q4_K/Q6_K chunk of two groups) per
// vpdpbusd: on Zen 5 (full-width 512-bit units) they beat the former 256-bit kernels by 1.4-2.6x
// per row (docs/simd.md); Zen 4 splits them in two but still issues fewer instructions.
//
// vpdpbusd needs one unsigned operand; the weights are made unsigned and the offset comes back
// as bias·Σx:
//   Q8_0: (w + 128)·x − 128·Σx;   Q4_0: q·x − 8·Σx (q the raw nibble);   Q4_K: nibbles are
//   unsigned already (its mins use QuantX::s as in the portable kernel);   Q6_K: q·x − 32·Σx per 16
//   values. The bias sums come from a second vpdpbusd of the bias bytes with x (per lane, as the
//   scales are).
// Each block's int32 sum is exact, as in the portable kernels; only the fp32 scaling differs in
// order, so both agree with the reference to fp32 rounding (tests/simd).
#include <cstddef>
#include <cstdint>

#include "simd/simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "simd/x86_hsum.h"
#include "tensor/quant_blocks.h"

#define EDGELLM_VNNI \
  __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,fma,f16c")))

namespace edgellm::simd {
namespace {

EDGELLM_VNNI inline float f16(const uint8_t* p) {
  uint16_t h;
  __builtin_memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

using x86::hsum;

EDGELLM_VNNI inline __m256i load256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// Σ over the row's 32-value blocks (kB bytes each: an fp16 scale, then the codes) on 512-bit
// vectors, blocks b and b + 1 in one vpdpbusd whose activations are one 64-byte load in x.q's
// order. codes(w) gives both blocks' codes as 64 unsigned bytes c = value + bias; the bias comes
// off with a second vpdpbusd of bias·x (exact, int32). Each block's 8 int32 lanes are scaled by
// [d_b × 8, d_b+1 × 8]: the weights' fp16 pair, permuted, times QuantX::d8. Two fp32 chains over
// four blocks per step; an odd last block takes one 256-bit vpdpbusd of its codes code32(w) at
// f16(w)·d_b, its bias off the same way. Per two blocks this is about 15 instructions where one
// 256-bit block took about 14 (decode is bound by them: docs/simd.md).
template <int64_t kB, class Codes, class Code32>
EDGELLM_VNNI inline float two_blocks(const uint8_t* w, const QuantX& x, int64_t n, uint8_t bias,
                                     const Codes& codes, const Code32& code32) {
  const int64_t nb = n / 32;
  const __m512i biasv = _mm512_set1_epi8(static_cast<char>(bias));
  const __m512i spread = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  auto pair = [&](__m512 acc, const uint8_t* wb, int64_t b) EDGELLM_VNNI {
    const __m512i xq = _mm512_loadu_si512(x.q + 32 * b);
    const __m512i v = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), codes(wb), xq),
                                       _mm512_dpbusd_epi32(_mm512_setzero_si512(), biasv, xq));
    uint16_t h0, h1;
    __builtin_memcpy(&h0, wb, 2);
    __builtin_memcpy(&h1, wb + kB, 2);
    const __m128 dw = _mm_cvtph_ps(_mm_cvtsi32_si128(h0 | (int32_t(h1) << 16)));
    const __m512 scale = _mm512_mul_ps(_mm512_permutexvar_ps(spread, _mm512_zextps128_ps512(dw)),
                                       _mm512_loadu_ps(x.d8 + 8 * b));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), scale, acc);
  };
  __m512 a0 = _mm512_setzero_ps(), a1 = a0;
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4, w += 4 * kB) {
    a0 = pair(a0, w, b);
    a1 = pair(a1, w + 2 * kB, b + 2);
  }
  if (b + 2 <= nb) {
    a0 = pair(a0, w, b);
    b += 2;
    w += 2 * kB;
  }
  float tail = 0;
  if (b < nb) {
    const __m256i xq = load256(x.q + 32 * b);
    const __m256i v = _mm256_sub_epi32(
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), code32(w), xq),
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm512_castsi512_si256(biasv), xq));
    tail = hsum(_mm256_cvtepi32_ps(v)) * (f16(w) * x.d[b]);
  }
  return x86::hsum512(_mm512_add_ps(a0, a1)) + tail;
}

EDGELLM_VNNI inline __m128i load128(const void* p) {
  return _mm_loadu_si128(static_cast<const __m128i*>(p));
}

// Q8_0: the codes w + 128 as unsigned bytes.
EDGELLM_VNNI float q8_0(const void* wv, const QuantX& x, int64_t n) {
  constexpr int64_t kB = sizeof(BlockQ8_0);
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  return two_blocks<kB>(
      static_cast<const uint8_t*>(wv), x, n, 128,
      [&](const uint8_t* w) EDGELLM_VNNI {
        return _mm512_xor_si512(
            _mm512_inserti64x4(_mm512_zextsi256_si512(load256(w + 2)), load256(w + kB + 2), 1),
            flip);
      },
      [&](const uint8_t* w)
          EDGELLM_VNNI { return _mm256_xor_si256(load256(w + 2), _mm512_castsi512_si256(flip)); });
}

// Q4_0: value k < 16 is the low nibble of qs[k], value 16 + k the high one, so the 128-bit lanes
// of [qs_b, qs_b, qs_b+1, qs_b+1], the 2nd and 4th shifted right by 4, masked to nibbles, are
// blocks b and b + 1 in x.q's order (the raw nibble is value + 8).
EDGELLM_VNNI float q4_0(const void* wv, const QuantX& x, int64_t n) {
  constexpr int64_t kB = sizeof(BlockQ4_0);
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  return two_blocks<kB>(
      static_cast<const uint8_t*>(wv), x, n, 8,
      [&](const uint8_t* w) EDGELLM_VNNI {
        const __m512i two = _mm512_zextsi256_si512(_mm256_inserti128_si256(
            _mm256_castsi128_si256(load128(w + 2)), load128(w + kB + 2), 1));
        const __m512i dup = _mm512_shuffle_i64x2(two, two, 0x50);
        return _mm512_and_si512(_mm512_mask_srli_epi16(dup, 0xff00ff00u, dup, 4), m4);
      },
      [&](const uint8_t* w) EDGELLM_VNNI {
        const __m128i raw = load128(w + 2);
        const __m128i lo = _mm_and_si128(raw, _mm512_castsi512_si128(m4));
        const __m128i hi = _mm_and_si128(_mm_srli_epi16(raw, 4), _mm512_castsi512_si128(m4));
        return _mm256_set_m128i(hi, lo);
      });
}

// The 8 bytes of v as 8 floats.
EDGELLM_VNNI inline __m256 bytes8(uint64_t v) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(v))));
}

// Q4_K (256 values): sub-block j = dd·sc_j·q − dmin·m_j; sub-blocks 2c and 2c + 1 are the low and
// high nibbles of qs[32c .. 32c + 31]. On 512-bit vectors one 64-value chunk is one vpdpbusd
// ([low nibbles, high nibbles] is x.q's order), its lanes scaled by [dd·sc_2c·d_2c × 8,
// dd·sc_2c+1·d_2c+1 × 8] picked out of the super-block's 8 scales by one permute. The 6-bit
// (scale, min) pairs are unpacked 4 at a time in 32-bit words (q4k_scale_min, bytewise).
EDGELLM_VNNI float q4_k(const void* wv, const QuantX& x, int64_t n) {
  const auto* w = static_cast<const uint8_t*>(wv);
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  const __m512i first = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m512i two = _mm512_set1_epi32(2);
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  __m256 mins = _mm256_setzero_ps();  // Σ_j dmin·m_j · d_j·s_j, per sub-block lane
  for (int64_t sb = 0; sb < n / 256; ++sb, w += sizeof(BlockQ4_K)) {
    const float dd = f16(w), dmin = f16(w + 2);
    uint32_t w0, w1, w2;
    __builtin_memcpy(&w0, w + 4, 4);
    __builtin_memcpy(&w1, w + 8, 4);
    __builtin_memcpy(&w2, w + 12, 4);
    const uint64_t sc =
        (w0 & 0x3f3f3f3fu) | uint64_t((w2 & 0x0f0f0f0fu) | ((w0 >> 2) & 0x30303030u)) << 32;
    const uint64_t m =
        (w1 & 0x3f3f3f3fu) | uint64_t(((w2 >> 4) & 0x0f0f0f0fu) | ((w1 >> 2) & 0x30303030u)) << 32;
    const uint8_t* qs = w + 16;
    const int8_t* xq = x.q + 256 * sb;
    const float* xd = x.d + 8 * sb;
    const __m256 xdv = _mm256_loadu_ps(xd);
    const __m512 scales =
        _mm512_zextps256_ps512(_mm256_mul_ps(_mm256_mul_ps(bytes8(sc), _mm256_set1_ps(dd)), xdv));
    __m512i idx = first;
    for (int c = 0; c < 4; ++c) {
      const __m256i raw = load256(qs + 32 * c);
      const __m512i q = _mm512_and_si512(
          _mm512_inserti64x4(_mm512_zextsi256_si512(raw), _mm256_srli_epi16(raw, 4), 1), m4);
      const __m512i v =
          _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, _mm512_loadu_si512(xq + 64 * c));
      acc[c & 1] =
          _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), _mm512_permutexvar_ps(idx, scales), acc[c & 1]);
      idx = _mm512_add_epi32(idx, two);
    }
    const __m256 dsj = _mm256_mul_ps(xdv, _mm256_cvtepi32_ps(load256(x.s + 8 * sb)));  // d_j·s_j
    mins = _mm256_fmadd_ps(_mm256_mul_ps(bytes8(m), _mm256_set1_ps(dmin)), dsj, mins);
  }
  return x86::hsum512(_mm512_add_ps(acc[0], acc[1])) - hsum(mins);
}

// Q6_K (256 values): x = d·scale·(q − 32), one int8 scale per 16 values; in half h, group g
// (32 values) takes its low 4 bits from ql[64h + 32(g&1) + l] (low nibble for g < 2) and its high
// 2 bits from bits 2g of qh[32h + l] (tensor/quant_blocks.h q6k_get).
//
// On 512-bit vectors: groups g and g + 1 of a half are one vpdpbusd: [ql, ql + 32] is one 64-byte
// load, qh is broadcast to both halves and shifted per half (masked shifts), and the 16 int32
// lanes take the scales [sc_2g, sc_2g+1, sc_2g+2, sc_2g+3] × d·d_g (×4 lanes each), permuted out of
// the half's 8 scales.
EDGELLM_VNNI float q6_k(const void* wv, const QuantX& x, int64_t n) {
  const auto* w = static_cast<const uint8_t*>(wv);
  const __m512i m4 = _mm512_set1_epi8(0x0f), m2 = _mm512_set1_epi8(0x30);
  const __m512i c32 = _mm512_set1_epi8(32);
  const __mmask32 upper = 0xffff0000u;  // the 16-bit lanes of the upper 256 bits
  const __m256i pairs = _mm256_set_epi32(3, 3, 2, 2, 1, 1, 0, 0);  // d_g for scales 2g, 2g + 1
  const __m512i quads = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
  const __m512i four = _mm512_set1_epi32(4);
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t sb = 0; sb < n / 256; ++sb, w += sizeof(BlockQ6_K)) {
    const auto* sc = reinterpret_cast<const int8_t*>(w + 192);
    const float d = f16(w + 208);
    for (int h = 0; h < 2; ++h) {
      const __m512i l = _mm512_loadu_si512(w + 64 * h);                      // [la, lb]
      const __m512i hb = _mm512_broadcast_i64x4(load256(w + 128 + 32 * h));  // [hb, hb]
      const __m512i q01 = _mm512_or_si512(
          _mm512_and_si512(l, m4),
          _mm512_and_si512(_mm512_mask_slli_epi16(_mm512_slli_epi16(hb, 4), upper, hb, 2), m2));
      const __m512i q23 =
          _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                          _mm512_and_si512(_mm512_mask_srli_epi16(hb, upper, hb, 2), m2));
      const int8_t* xq = x.q + 256 * sb + 128 * h;
      const __m128 xd = _mm_loadu_ps(x.d + 8 * sb + 4 * h);
      const __m256 f = _mm256_mul_ps(
          _mm256_cvtepi32_ps(
              _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc + 8 * h)))),
          _mm256_mul_ps(_mm256_set1_ps(d),
                        _mm256_permutevar8x32_ps(_mm256_broadcast_ps(&xd), pairs)));
      const __m512 scales = _mm512_zextps256_ps512(f);
      auto groups = [&](__m512 a, __m512i q, const int8_t* xv, __m512i idx) EDGELLM_VNNI {
        const __m512i xs = _mm512_loadu_si512(xv);
        const __m512i v = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q, xs),
                                           _mm512_dpbusd_epi32(_mm512_setzero_si512(), c32, xs));
        return _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), _mm512_permutexvar_ps(idx, scales), a);
      };
      acc[0] = groups(acc[0], q01, xq, quads);
      acc[1] = groups(acc[1], q23, xq + 64, _mm512_add_epi32(quads, four));
    }
  }
  return x86::hsum512(_mm512_add_ps(acc[0], acc[1]));
}

// F16C is not asked for: clang 14's __builtin_cpu_supports does not know the name, and every
// AVX-512 CPU has it (and FMA).
bool cpu_has_vnni() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("fma");
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
