// The integer decode GEMV over packed weights (simd.h "packed weights × 8-bit activations"):
// b-bit codes (2..8) of a dense or bitmask-sparse row multiplied by the 8-bit activations with
// AVX512-VNNI's vpdpbusd, 64 columns per instruction, as qdot_vnni.cpp does for the GGUF blocks.
//
// Any b from one code path, three instructions per 64 codes: 64 b-bit codes are exactly 8·b
// bytes; vpermb (AVX512-VBMI) gives each 64-bit lane j the 8 bytes from byte j·b, which hold its
// 8 codes at bits s + i·b (s < 8: the bit the stream starts at inside its first byte), and
// vpmultishiftqb pulls each code into its own byte, masked to b bits. A bitmask row stores only
// its kept codes: vpexpandb (AVX512-VBMI2) puts them at the columns the 64 mask bits name and
// fills the pruned columns with the group's offset, so that the dense arithmetic applies
// unchanged and a pruned weight contributes (off − off)·x = 0; the row's bit stream advances by
// popcount(mask)·b. Nothing is scattered in scalar code, whatever the sparsity.
//
// Each 32-column block's int32 lane sums Σ code·q are exact and scaled by scale_g·d_block in
// fp32; the offsets come off once per group as scale_g·off_g·Σ d·s (QuantX::ds, in double).
// No step reads past the end of the matrix's codes (whole loads inside, masked loads at the
// end). 512-bit vectors (a first 256-bit version, with per-block offsets, was 1.4× slower per
// row in cache: 0.133 against 0.095 ms for b4 in bench_dot_row): the unpack and the expand are
// a fixed number of instructions per vector, so wider vectors mean fewer of them per weight.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "simd/simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "simd/x86_hsum.h"

#define EDGELLM_VBMI                                                                 \
  __attribute__((                                                                    \
      target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,avx512vbmi,avx512vbmi2," \
             "bmi2,fma,f16c")))

namespace edgellm::simd {
namespace {

using x86::hsum;
using x86::hsum512;

// The per-row constants of the unpack: the vpermb index (lane j, byte k ← byte j·b + k) and the
// vpmultishiftqb control (byte i of a lane ← bits i·b .. of it), for a stream starting at bit 0;
// 64 codes (eight lanes) at a time, the low half of each vector doing 32.
struct Unpack {
  __m512i perm, shift, mask;
};

// Both tables for every width, built at compile time: built per row they cost 12 % of a
// 4096-column b4 row (bench_dot_row 0.086 → 0.076 ms per 1024 rows).
struct UnpackTables {
  alignas(64) uint8_t perm[9][64] = {};
  alignas(64) uint8_t shift[9][64] = {};
};
constexpr UnpackTables make_tables() {
  UnpackTables t;
  for (int b = 2; b <= 8; ++b)
    for (int j = 0; j < 8; ++j)
      for (int k = 0; k < 8; ++k) {
        t.perm[b][8 * j + k] = static_cast<uint8_t>(j * b + k);
        t.shift[b][8 * j + k] = static_cast<uint8_t>(k * b);
      }
  return t;
}
constexpr UnpackTables kTables = make_tables();

EDGELLM_VBMI inline Unpack make_unpack(int b) {
  return {_mm512_load_si512(kTables.perm[b]), _mm512_load_si512(kTables.shift[b]),
          _mm512_set1_epi8(static_cast<char>((1 << b) - 1))};
}

// Codes 0..63 of the stream at bit `sub` (< 8) of p, one per byte; n_bytes (<= 64) are the bytes
// that hold them. A whole 64-byte load where the buffer has them (end: one past its last byte),
// else a masked load of the n_bytes only: masked loads everywhere ran at 6 GB/s out of cache
// here against 16 for plain ones (Zen 5; 2.3x slower decode).
EDGELLM_VBMI inline __m512i unpack64(const Unpack& u, const uint8_t* p, const uint8_t* end, int sub,
                                     int n_bytes) {
  const __m512i raw =
      end - p >= 64 ? _mm512_loadu_si512(p)
                    : _mm512_maskz_loadu_epi8(_bzhi_u64(~0ull, static_cast<unsigned>(n_bytes)), p);
  const __m512i lanes = _mm512_permutexvar_epi8(u.perm, raw);
  const __m512i shift = _mm512_add_epi8(u.shift, _mm512_set1_epi8(static_cast<char>(sub)));
  return _mm512_and_si512(_mm512_multishift_epi64_epi8(shift, lanes), u.mask);
}
EDGELLM_VBMI inline __m256i unpack32(const Unpack& u, const uint8_t* p, const uint8_t* end, int sub,
                                     int n_bytes) {
  const __m256i raw =
      end - p >= 32 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
                    : _mm256_maskz_loadu_epi8(_bzhi_u32(~0u, static_cast<unsigned>(n_bytes)), p);
  const __m256i lanes = _mm256_permutexvar_epi8(_mm512_castsi512_si256(u.perm), raw);
  const __m256i shift =
      _mm256_add_epi8(_mm512_castsi512_si256(u.shift), _mm256_set1_epi8(static_cast<char>(sub)));
  return _mm256_and_si256(_mm256_multishift_epi64_epi8(shift, lanes),
                          _mm512_castsi512_si256(u.mask));
}

// Σ_k scale_g·d_k·Σ_c code_c·q_c over the row's 32-column blocks k, minus the offsets
// Σ_g scale_g·off_g·Σ_{k in g} d_k·s_k (QuantX::ds). codes64(k) gives blocks k and k + 1 as 64
// unsigned bytes, codes32(k) block k alone (both also get the group's offset off_g); pairs run on
// 512-bit vectors (two fp32 chains), a group with an odd number of blocks ends with one 256-bit
// step. Each block's lanes are scaled by d_k (QuantX::d8) inside a group and the group's sum by
// scale_g at its end. Groups are whole blocks or the whole row (the last may be shorter).
template <class Codes64, class Codes32>
EDGELLM_VBMI inline float accumulate(const PackedRowQ& row, const QuantX& x, Codes64&& codes64,
                                     Codes32&& codes32) {
  const int64_t nb = row.cols / 32;
  const int64_t per_group = (row.group >= row.cols ? row.cols : row.group) / 32;
  __m512 a0 = _mm512_setzero_ps();
  __m256 a2 = _mm256_setzero_ps();
  double offsets = 0;
  auto pair = [&](__m512 acc, int64_t k, int off) EDGELLM_VBMI {
    const __m512i v = _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes64(k, off),
                                          _mm512_loadu_si512(x.q + 32 * k));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), _mm512_loadu_ps(x.d8 + 8 * k), acc);
  };
  for (int64_t k0 = 0, g = 0; k0 < nb; k0 += per_group, ++g) {
    const int64_t k1 = std::min(nb, k0 + per_group);
    const float scale = _cvtsh_ss(row.scales[g]);
    const int off = row.zeros ? row.zeros[g] : row.sym_off;
    offsets += double(scale) * off * (x.ds[k1] - x.ds[k0]);
    __m512 g0 = _mm512_setzero_ps(), g1 = g0;
    int64_t k = k0;
    for (; k + 4 <= k1; k += 4) {
      g0 = pair(g0, k, off);
      g1 = pair(g1, k + 2, off);
    }
    if (k + 2 <= k1) {
      g0 = pair(g0, k, off);
      k += 2;
    }
    a0 = _mm512_fmadd_ps(_mm512_add_ps(g0, g1), _mm512_set1_ps(scale), a0);
    if (k < k1) {
      const __m256i v =
          _mm256_dpbusd_epi32(_mm256_setzero_si256(), codes32(k, off),
                              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q + 32 * k)));
      a2 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), _mm256_set1_ps(scale * x.d[k]), a2);
    }
  }
  return float(double(hsum512(a0) + hsum(a2)) - offsets);
}

EDGELLM_VBMI float dense_row(const PackedRowQ& row, const QuantX& x) {
  const Unpack u = make_unpack(row.bits);
  const int b = row.bits;
  const uint8_t* end = row.codes + row.readable;
  return accumulate(
      row, x,
      [&](int64_t k, int)
          EDGELLM_VBMI { return unpack64(u, row.codes + k * 4 * b, end, 0, 8 * b); },
      [&](int64_t k, int)
          EDGELLM_VBMI { return unpack32(u, row.codes + k * 4 * b, end, 0, 4 * b); });
}

// A bitmask row: the kept codes expanded to their columns, the pruned ones filled with the
// group's offset (so that they add off·q, which the offset term takes away again: 0).
EDGELLM_VBMI float bitmask_row(const PackedRowMaskQ& m, const QuantX& x) {
  const PackedRowQ& row = m.row;
  const Unpack u = make_unpack(row.bits);
  const int b = row.bits;
  uint64_t bit = m.bit;  // blocks are visited in order
  // The next n kept codes: where they start (byte, bit within it) and the bytes that hold them.
  struct Span {
    const uint8_t* p;
    int sub, n_bytes;
  };
  auto take = [&](int n) {
    const int sub = static_cast<int>(bit & 7);
    const Span s{m.codes + (bit >> 3), sub, (sub + n * b + 7) / 8};
    bit += static_cast<uint64_t>(n) * b;
    return s;
  };
  return accumulate(
      row, x,
      [&](int64_t k, int off) EDGELLM_VBMI {
        uint64_t keep;
        __builtin_memcpy(&keep, m.mask + 4 * k, 8);
        const Span s = take(__builtin_popcountll(keep));
        const __m512i kept = unpack64(u, s.p, m.codes_end, s.sub, s.n_bytes);
        return _mm512_mask_expand_epi8(_mm512_set1_epi8(static_cast<char>(off)), keep, kept);
      },
      [&](int64_t k, int off) EDGELLM_VBMI {
        uint32_t keep;
        __builtin_memcpy(&keep, m.mask + 4 * k, 4);
        const Span s = take(__builtin_popcount(keep));
        const __m256i kept = unpack32(u, s.p, m.codes_end, s.sub, s.n_bytes);
        return _mm256_mask_expand_epi8(_mm256_set1_epi8(static_cast<char>(off)), keep, kept);
      });
}

// F16C is implied by AVX-512 and not asked for (clang 14's __builtin_cpu_supports lacks it).
bool cpu_has_vbmi_vnni() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vbmi") &&
         __builtin_cpu_supports("avx512vbmi2") && __builtin_cpu_supports("bmi2") &&
         __builtin_cpu_supports("fma");
}

}  // namespace

PackedQdotFn packed_qdot_vnni_kernel() {
  static const bool has = cpu_has_vbmi_vnni();
  return has ? dense_row : nullptr;
}

PackedMaskQdotFn packed_mask_qdot_vnni_kernel() {
  static const bool has = cpu_has_vbmi_vnni();
  return has ? bitmask_row : nullptr;
}

}  // namespace edgellm::simd

#else  // not x86-64 GCC/Clang

namespace edgellm::simd {
PackedQdotFn packed_qdot_vnni_kernel() { return nullptr; }
PackedMaskQdotFn packed_mask_qdot_vnni_kernel() { return nullptr; }
}  // namespace edgellm::simd

#endif
