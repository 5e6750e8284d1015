// Packed-weight kernels (simd.h "packed weights"), one Highway source compiled per target.
//
// Bit unpacking without per-code scalar work: 16 consecutive b-bit codes (b = 2..8) fill exactly
// 2b <= 16 bytes, so one 128-bit block holds them all. The block is loaded once and duplicated
// into every 128-bit block of the vector (LoadDup128); a byte shuffle (TableLookupBytesOr0, which
// works within blocks) moves the two bytes that hold code i into the low half of u32 lane i, a
// per-lane shift (i·b mod 8) and a mask leave the code. The shuffle indices and shifts depend on
// b only (kUnpack, built at compile time). The codes then become fp32 lanes as (code − offset) and
// meet x (dot) or the scale (decode) like the block formats of dot_kernels.cpp: one scale per
// group, applied once to the group's partial sum.
//
// The HWY_SCALAR target has no byte shuffle of 4-byte lanes (its vectors are one lane), so there
// the same functions unpack with plain shifts.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "simd/half.h"
#include "simd/hwy_config.h"
#include "simd/simd.h"
#include "simd/target.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/unpack_kernels.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// foreach_target.h must come before highway.h.
#include "hwy/highway.h"
#include "simd/hwy_common-inl.h"
#include "simd/hwy_dispatch.h"

#ifndef EDGELLM_SIMD_UNPACK_TABLES
#define EDGELLM_SIMD_UNPACK_TABLES
namespace edgellm::simd::detail {

// For b-bit codes, the 16 codes of a 2b-byte chunk: idx[4i..4i+3] = the bytes of code i in u32
// lane i (its first byte, the next one if inside the chunk, 0x80 = zero for the rest), sh[i] =
// the bit offset of code i in its first byte.
struct UnpackTable {
  alignas(64) std::array<uint8_t, 64> idx{};
  alignas(64) std::array<uint32_t, 16> sh{};
};

constexpr std::array<UnpackTable, 9> make_unpack_tables() {
  std::array<UnpackTable, 9> t{};
  for (int b = 1; b <= 8; ++b)
    for (int i = 0; i < 16; ++i) {
      const int byte = i * b / 8;
      t[b].idx[4 * i] = static_cast<uint8_t>(byte);
      t[b].idx[4 * i + 1] = static_cast<uint8_t>(byte + 1 < 16 ? byte + 1 : 0x80);
      t[b].idx[4 * i + 2] = t[b].idx[4 * i + 3] = 0x80;
      t[b].sh[i] = static_cast<uint32_t>(i * b % 8);
    }
  return t;
}
inline constexpr std::array<UnpackTable, 9> kUnpack = make_unpack_tables();

}  // namespace edgellm::simd::detail
#endif

HWY_BEFORE_NAMESPACE();
namespace edgellm::simd {
namespace HWY_NAMESPACE {
using DU = hn::RebindToUnsigned<DF>;
using VI = hn::Vec<DI>;

// The b-bit code at bit `pos` of p (b <= 8: at most two bytes).
inline int code_at(const uint8_t* p, uint64_t pos, int b) {
  const uint8_t* q = p + pos / 8;
  const int sh = static_cast<int>(pos % 8);
  const unsigned w = sh + b > 8 ? unsigned(q[0]) | unsigned(q[1]) << 8 : unsigned(q[0]);
  return static_cast<int>((w >> sh) & ((1u << b) - 1));
}

#if HWY_TARGET != HWY_SCALAR
// Codes v·N .. v·N+N−1 of a chunk whose bytes are duplicated in every block of `bytes`, as
// (code − off) in int32 lanes.
inline VI chunk_codes(hn::Vec<hn::Repartition<uint8_t, DU>> bytes, const detail::UnpackTable& t,
                      size_t v, hn::Vec<DU> mask, VI off) {
  const DU du;
  const hn::Repartition<uint8_t, DU> d8;
  const size_t N = hn::Lanes(du);
  const auto w =
      hn::BitCast(du, hn::TableLookupBytesOr0(bytes, hn::Load(d8, t.idx.data() + 4 * N * v)));
  const auto code = hn::And(hn::Shr(w, hn::Load(du, t.sh.data() + N * v)), mask);
  return hn::Sub(hn::BitCast(DI(), code), off);
}
#endif

// Calls f(col, n, q0..) for the codes of one group [c0, c0 + n) of a row: q is a vector of
// (code − off) as fp32 for columns col .. col + Lanes − 1, of which the first `valid` are real
// (the rest are zero-padded codes of a row's last partial chunk; callers give them x = 0 or do
// not store them). Group starts are byte-aligned (PackedRowQ contract).
template <typename F>
inline void for_group_codes(const PackedRowQ& r, int64_t c0, int64_t n, int off, F&& f) {
  const DF d;
  const int b = r.bits;
  const uint8_t* base = r.codes;
  const uint64_t start = uint64_t(c0) * b;  // bit position, a multiple of 8
#if HWY_TARGET != HWY_SCALAR
  {
    const DU du;
    const hn::Repartition<uint8_t, DU> d8;
    const size_t N = hn::Lanes(d);
    const auto& t = detail::kUnpack[b];
    const auto mask = hn::Set(du, (1u << b) - 1);
    const VI voff = hn::Set(DI(), off);
    int64_t j = 0;
    for (; j < n; j += 16) {
      const uint64_t byte = (start + uint64_t(j) * b) / 8;
      hn::Vec<decltype(d8)> bytes;
      const int64_t m = n - j < 16 ? n - j : 16;
      if (byte + 16 <= uint64_t(r.readable)) {
        bytes = hn::LoadDup128(d8, base + byte);
      } else {  // the row's last bytes: copy only what is inside it
        alignas(16) uint8_t buf[16] = {};
        std::memcpy(buf, base + byte, static_cast<size_t>(r.readable) - byte);
        bytes = hn::LoadDup128(d8, buf);
      }
      for (size_t v = 0; v * N < size_t(m); ++v) {
        const int64_t valid = m - int64_t(v * N);
        f(c0 + j + int64_t(v * N), valid < int64_t(N) ? valid : int64_t(N),
          hn::ConvertTo(d, chunk_codes(bytes, t, v, mask, voff)));
      }
    }
  }
#else
  for (int64_t j = 0; j < n; ++j)
    f(c0 + j, 1, hn::Set(d, static_cast<float>(code_at(base, start + uint64_t(j) * b, b) - off)));
#endif
}

// x[c .. c+valid) as a vector, zero beyond `valid` (loads stay inside x).
inline VF load_x(DF d, const float* x, int64_t valid) {
  if (valid == static_cast<int64_t>(hn::Lanes(d))) return hn::LoadU(d, x);
  HWY_ALIGN float buf[16] = {};
  std::memcpy(buf, x, static_cast<size_t>(valid) * sizeof(float));
  return hn::Load(d, buf);
}

inline void group_range(const PackedRowQ& r, int64_t g, int64_t* c0, int64_t* n) {
  *c0 = g * r.group;
  *n = r.cols - *c0 < r.group ? r.cols - *c0 : r.group;
}

// fp16 scales[0..n) (n <= 16) as fp32 in out[0..n).
inline void scales_f32(const uint16_t* scales, int64_t n, float* out) {
#if EDGELLM_HW_F16
  const DF d;
  const hn::Rebind<hwy::float16_t, DF> dh;
  const auto* h = reinterpret_cast<const hwy::float16_t*>(scales);
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::PromoteTo(d, hn::LoadU(dh, h + i)), d, out + i);
  for (; i < n; ++i) out[i] = half_at(scales + i);
#else
  for (int64_t i = 0; i < n; ++i) out[i] = half_at(scales + i);
#endif
}

#if HWY_TARGET != HWY_SCALAR
// The hot loop of PackedDotQ: groups 0 .. g_fast − 1, each a whole number (kChunks, or group/16
// when 0) of 16-code chunks whose 16-byte loads stay inside the row. Unrolled per group size so
// a g32 group (two chunks on AVX-512) costs a few instructions beyond its arithmetic; scales are
// converted 16 at a time.
template <int kChunks, bool kAsym>
void DotFullGroups(const PackedRowQ& r, const float* x, int64_t g_fast, VF& acc0, VF& acc1) {
  const DF d;
  const DU du;
  const hn::Repartition<uint8_t, DU> d8;
  const size_t N = hn::Lanes(d);
  const int b = r.bits;
  const auto& t = detail::kUnpack[b];
  const auto mask = hn::Set(du, (1u << b) - 1);
  const int64_t chunks = kChunks ? kChunks : r.group / 16;
  const int64_t gbytes = r.group / 8 * b;
  VI voff = hn::Set(DI(), r.sym_off);
  for (int64_t g0 = 0; g0 < g_fast; g0 += 16) {
    const int64_t ng = g_fast - g0 < 16 ? g_fast - g0 : 16;
    HWY_ALIGN float sc[16];
    scales_f32(r.scales + g0, ng, sc);
    for (int64_t k = 0; k < ng; ++k) {
      const int64_t g = g0 + k;
      const uint8_t* p = r.codes + g * gbytes;
      const float* xg = x + g * r.group;
      if constexpr (kAsym) voff = hn::Set(DI(), r.zeros[g]);
      const auto chunk = [&](int64_t c, VF s) {
        const auto bytes = hn::LoadDup128(d8, p + c * 2 * b);
        for (size_t v = 0; v < 16 / N; ++v)
          s = hn::MulAdd(hn::ConvertTo(d, chunk_codes(bytes, t, v, mask, voff)),
                         hn::LoadU(d, xg + 16 * c + int64_t(v * N)), s);
        return s;
      };
      // Even and odd chunks into separate sums: a whole-row group is a chain of up to
      // cols/16 MulAdds otherwise (per-row b8 rows ran 21% slower than the native build).
      VF s = hn::Zero(d), s1 = hn::Zero(d);
      int64_t c = 0;
      for (; c + 2 <= chunks; c += 2) {
        s = chunk(c, s);
        s1 = chunk(c + 1, s1);
      }
      if (c < chunks) s = chunk(c, s);
      s = hn::Add(s, s1);
      // Two accumulators (even / odd groups): the next group does not wait on this MulAdd.
      if (k & 1)
        acc1 = hn::MulAdd(hn::Set(d, sc[k]), s, acc1);
      else
        acc0 = hn::MulAdd(hn::Set(d, sc[k]), s, acc0);
    }
  }
}

template <bool kAsym>
void DotFullGroupsAny(const PackedRowQ& r, const float* x, int64_t g_fast, VF& acc0, VF& acc1) {
  switch (r.group) {
    case 16:
      return DotFullGroups<1, kAsym>(r, x, g_fast, acc0, acc1);
    case 32:
      return DotFullGroups<2, kAsym>(r, x, g_fast, acc0, acc1);
    case 64:
      return DotFullGroups<4, kAsym>(r, x, g_fast, acc0, acc1);
    case 128:
      return DotFullGroups<8, kAsym>(r, x, g_fast, acc0, acc1);
    default:
      return DotFullGroups<0, kAsym>(r, x, g_fast, acc0, acc1);
  }
}
#endif

float PackedDotQ(const PackedRowQ& r, const float* x) {
  const DF d;
  const int64_t ng = (r.cols + r.group - 1) / r.group;
  VF acc0 = hn::Zero(d), acc1 = hn::Zero(d);
  int64_t g = 0;
#if HWY_TARGET != HWY_SCALAR
  if (r.group % 16 == 0) {
    // Full groups whose last chunk's 16-byte load ends inside the row.
    int64_t g_fast = r.cols / r.group;
    while (g_fast > 0 && (g_fast * r.group - 16) / 8 * r.bits + 16 > r.readable) --g_fast;
    if (r.zeros)
      DotFullGroupsAny<true>(r, x, g_fast, acc0, acc1);
    else
      DotFullGroupsAny<false>(r, x, g_fast, acc0, acc1);
    g = g_fast;
  }
#endif
  // The rest (a row's last groups, group sizes that are not a multiple of 16, a whole-row group):
  // padded chunks where a load would leave the row, or one lane at a time (HWY_SCALAR).
  for (; g < ng; ++g) {
    int64_t c0, n;
    group_range(r, g, &c0, &n);
    VF s = hn::Zero(d);
    for_group_codes(
        r, c0, n, r.zeros ? r.zeros[g] : r.sym_off,
        [&](int64_t c, int64_t valid, VF q) { s = hn::MulAdd(q, load_x(d, x + c, valid), s); });
    acc0 = hn::MulAdd(hn::Set(d, half_at(r.scales + g)), s, acc0);
  }
  return sum(d, hn::Add(acc0, acc1));
}

void PackedDecodeQ(const PackedRowQ& r, float* dst) {
  const DF d;
  const int64_t ng = (r.cols + r.group - 1) / r.group;
  for (int64_t g = 0; g < ng; ++g) {
    int64_t c0, n;
    group_range(r, g, &c0, &n);
    const VF s = hn::Set(d, half_at(r.scales + g));
    for_group_codes(r, c0, n, r.zeros ? r.zeros[g] : r.sym_off,
                    [&](int64_t c, int64_t valid, VF q) {
                      if (valid == static_cast<int64_t>(hn::Lanes(d))) {
                        hn::StoreU(hn::Mul(s, q), d, dst + c);
                      } else {
                        HWY_ALIGN float buf[16];
                        hn::Store(hn::Mul(s, q), d, buf);
                        std::memcpy(dst + c, buf, static_cast<size_t>(valid) * sizeof(float));
                      }
                    });
  }
}

// (code[i] − off) as fp32 lanes, i = 0 .. Lanes − 1.
inline VF u16_lanes(DF d, const uint16_t* code, VI off) {
  const hn::Rebind<uint16_t, DF> d16;
  return hn::ConvertTo(d,
                       hn::Sub(hn::BitCast(DI(), hn::PromoteTo(DU(), hn::LoadU(d16, code))), off));
}

float DotCodes(const uint16_t* code, int off, const float* x, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const VI voff = hn::Set(DI(), off);
  VF a0 = hn::Zero(d), a1 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    a0 = hn::MulAdd(u16_lanes(d, code + i, voff), hn::LoadU(d, x + i), a0);
    a1 = hn::MulAdd(u16_lanes(d, code + i + N, voff), hn::LoadU(d, x + i + N), a1);
  }
  for (; i + N <= n; i += N) a0 = hn::MulAdd(u16_lanes(d, code + i, voff), hn::LoadU(d, x + i), a0);
  float s = sum(d, hn::Add(a0, a1));
  for (; i < n; ++i) s += static_cast<float>(int(code[i]) - off) * x[i];
  return s;
}

void DecodeCodes(const uint16_t* code, int off, float scale, float* dst, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const VI voff = hn::Set(DI(), off);
  const VF s = hn::Set(d, scale);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Mul(s, u16_lanes(d, code + i, voff)), d, dst + i);
  for (; i < n; ++i) dst[i] = scale * static_cast<float>(int(code[i]) - off);
}

#undef EDGELLM_HW_F16

}  // namespace HWY_NAMESPACE
}  // namespace edgellm::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace edgellm::simd {

HWY_EXPORT(PackedDotQ);
HWY_EXPORT(PackedDecodeQ);
HWY_EXPORT(DotCodes);
HWY_EXPORT(DecodeCodes);

PackedDotQFn packed_dot_q_kernel() {
  detail::ensure_init();
  return EDGELLM_CHOSEN(PackedDotQ);
}
PackedDecodeQFn packed_decode_q_kernel() {
  detail::ensure_init();
  return EDGELLM_CHOSEN(PackedDecodeQ);
}
DotCodesFn dot_codes_kernel() {
  detail::ensure_init();
  return EDGELLM_CHOSEN(DotCodes);
}
DecodeCodesFn decode_codes_kernel() {
  detail::ensure_init();
  return EDGELLM_CHOSEN(DecodeCodes);
}

float packed_dot_q(const PackedRowQ& row, const float* x) {
  detail::ensure_init();
  return HWY_DYNAMIC_DISPATCH(PackedDotQ)(row, x);
}
void packed_decode_q(const PackedRowQ& row, float* dst) {
  detail::ensure_init();
  HWY_DYNAMIC_DISPATCH(PackedDecodeQ)(row, dst);
}
float dot_codes(const uint16_t* code, int off, const float* x, int64_t n) {
  detail::ensure_init();
  return HWY_DYNAMIC_DISPATCH(DotCodes)(code, off, x, n);
}
void decode_codes(const uint16_t* code, int off, float scale, float* dst, int64_t n) {
  detail::ensure_init();
  HWY_DYNAMIC_DISPATCH(DecodeCodes)(code, off, scale, dst, n);
}

}  // namespace edgellm::simd
#endif  // HWY_ONCE
