// Integer decode-GEMV dot products (simd.h "qdot"): a block-quantized row (Q8_0, Q4_0, Q4_K,
// Q6_K) against activations quantized to 8 bits per block of 32 (QuantX). The codes are widened
// to int16 and multiplied by the int16 activation codes with a widening pairwise multiply-add
// (pmaddwd on x86, smlal on NEON), so a block's sum is an exact integer; only the block scale is
// applied in fp32, once per block. Against the fp32-activation kernels (dot_kernels.cpp) this
// removes the int→float conversion and the fp32 multiply of every weight, which is what bounded
// the quantized decode (compute-bound at ~0.3 cycles per weight there).
//
// Vectors are capped at 16 int16 lanes: 16 consecutive values of a block never straddle a nibble
// half (Q4_0, Q4_K) or a Q6_K scale, on every target (16, 8 or 1 lanes).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "simd/half.h"
#include "simd/hwy_config.h"
#include "simd/simd.h"
#include "simd/target.h"
#include "tensor/quant_blocks.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/qdot_kernels.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// foreach_target.h must come before highway.h.
#include "hwy/highway.h"
#include "simd/hwy_common-inl.h"
#include "simd/hwy_dispatch.h"

HWY_BEFORE_NAMESPACE();
namespace edgellm::simd {
namespace HWY_NAMESPACE {

using DQ = hn::CappedTag<int16_t, 16>;
using VQ = hn::Vec<DQ>;
using DW = hn::RepartitionToWide<DQ>;  // int32 lanes of the pairwise sums
using VW = hn::Vec<DW>;
using DS = hn::Rebind<float, DW>;  // their fp32 conversion
using VS = hn::Vec<DS>;

// Lanes(DQ) consecutive bytes widened to int16 lanes.
inline VQ widen_u8(const uint8_t* p) {
  return hn::PromoteTo(DQ(), hn::LoadU(hn::Rebind<uint8_t, DQ>(), p));
}
inline VQ widen_i8(const uint8_t* p) {
  return hn::PromoteTo(DQ(),
                       hn::LoadU(hn::Rebind<int8_t, DQ>(), reinterpret_cast<const int8_t*>(p)));
}

// acc += scale · Σ_{k<kLen} w[k]·xq[k], the sum exact in int32; wq(k) gives the int16 weight codes
// of lanes k .. k+Lanes(DQ).
template <int kLen, class WQ>
inline VS block_dot(const WQ& wq, const int16_t* xq, float scale, VS acc) {
  const DQ dq;
  const DW dw;
  const int nq = static_cast<int>(hn::Lanes(dq));
  VW s0 = hn::Zero(dw), s1 = hn::Zero(dw);
  for (int k = 0; k < kLen; k += nq)
    s0 = hn::ReorderWidenMulAccumulate(dw, wq(k), hn::LoadU(dq, xq + k), s0, s1);
  // Whatever lanes the target leaves the pairs in, the lanes of s0 + s1 sum to the dot product.
  return hn::MulAdd(hn::ConvertTo(DS(), hn::Add(s0, s1)), hn::Set(DS(), scale), acc);
}

inline float reduce(VS v) { return hn::GetLane(hn::SumOfLanes(DS(), v)); }

// Blocks alternate between two accumulators: one fp32 multiply-add chain per block would make the
// loop latency-bound (4 cycles per block) instead of throughput-bound.

// Q8_0: x = d·q, q int8.
inline VS q8_0_block(const uint8_t* w, const QuantX& x, int64_t b, VS acc) {
  const uint8_t* qs = w + 2;
  return block_dot<32>([qs](int k) { return widen_i8(qs + k); }, x.q + 32 * b, half_at(w) * x.d[b],
                       acc);
}
float QdotQ8_0(const void* wv, const QuantX& x, int64_t n) {
  const auto* w = static_cast<const uint8_t*>(wv);
  const int64_t nb = n / 32;
  VS a0 = hn::Zero(DS()), a1 = hn::Zero(DS());
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2, w += 2 * sizeof(BlockQ8_0)) {
    a0 = q8_0_block(w, x, b, a0);
    a1 = q8_0_block(w + sizeof(BlockQ8_0), x, b + 1, a1);
  }
  if (b < nb) a0 = q8_0_block(w, x, b, a0);
  return reduce(hn::Add(a0, a1));
}

// Q4_0: x = d·(nibble − 8); value k < 16 is the low nibble of qs[k], value 16 + k the high one.
inline VS q4_0_block(const uint8_t* w, const QuantX& x, int64_t b, VS acc) {
  const uint8_t* qs = w + 2;
  const VQ mask = hn::Set(DQ(), 0xf), eight = hn::Set(DQ(), 8);
  return block_dot<32>(
      [qs, mask, eight](int k) {
        const VQ nib =
            k < 16 ? hn::And(widen_u8(qs + k), mask) : hn::ShiftRight<4>(widen_u8(qs + k - 16));
        return hn::Sub(nib, eight);
      },
      x.q + 32 * b, half_at(w) * x.d[b], acc);
}
float QdotQ4_0(const void* wv, const QuantX& x, int64_t n) {
  const auto* w = static_cast<const uint8_t*>(wv);
  const int64_t nb = n / 32;
  VS a0 = hn::Zero(DS()), a1 = hn::Zero(DS());
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2, w += 2 * sizeof(BlockQ4_0)) {
    a0 = q4_0_block(w, x, b, a0);
    a1 = q4_0_block(w + sizeof(BlockQ4_0), x, b + 1, a1);
  }
  if (b < nb) a0 = q4_0_block(w, x, b, a0);
  return reduce(hn::Add(a0, a1));
}

// Q4_K (256 values): sub-block j (32 values) = dd·sc_j·q − dmin·m_j; sub-blocks 2c and 2c + 1 are
// the low and high nibbles of qs[32c .. 32c + 31].
float QdotQ4_K(const void* wv, const QuantX& x, int64_t n) {
  const auto* w = static_cast<const uint8_t*>(wv);
  const VQ mask = hn::Set(DQ(), 0xf);
  VS a0 = hn::Zero(DS()), a1 = hn::Zero(DS());
  // The mins term Σ_j dmin·m_j·d_j·s_j, summed per super-block as a vector of its 8 sub-blocks
  // (a scalar chain of 8 dependent multiply-adds would bound the loop).
  const hn::CappedTag<float, 8> d8;
  auto mins = hn::Zero(d8);
  HWY_ALIGN float mj[8], dsj[8];
  for (int64_t sb = 0; sb < n / 256; ++sb, w += sizeof(BlockQ4_K)) {
    const float dd = half_at(w), dmin = half_at(w + 2);
    const uint8_t* scales = w + 4;
    const uint8_t* qs = w + 16;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      edgellm::q4k_scale_min(j, scales, &sc, &m);
      const int64_t xb = 8 * sb + j;
      const uint8_t* q = qs + 32 * (j / 2);
      const float scale = dd * sc * x.d[xb];
      if (j % 2 == 0)
        a0 = block_dot<32>([q, mask](int k) { return hn::And(widen_u8(q + k), mask); },
                           x.q + 32 * xb, scale, a0);
      else
        a1 = block_dot<32>([q](int k) { return hn::ShiftRight<4>(widen_u8(q + k)); }, x.q + 32 * xb,
                           scale, a1);
      mj[j] = dmin * m;
      dsj[j] = x.d[xb] * static_cast<float>(x.s[xb]);
    }
    for (size_t j = 0; j < 8; j += hn::Lanes(d8))
      mins = hn::MulAdd(hn::Load(d8, mj + j), hn::Load(d8, dsj + j), mins);
  }
  return reduce(hn::Add(a0, a1)) - hn::GetLane(hn::SumOfLanes(d8, mins));
}

// Q6_K (256 values): x = d·scale·(q − 32), one int8 scale per 16 values; layout in
// tensor/quant_blocks.h (q6k_get): in half h, group g (32 values) takes its low 4 bits from
// ql[64h + 32(g&1) + l] (low nibble for g < 2) and its high 2 bits from bits 2g of qh[32h + l].
float QdotQ6_K(const void* wv, const QuantX& x, int64_t n) {
  const auto* w = static_cast<const uint8_t*>(wv);
  const VQ m4 = hn::Set(DQ(), 0xf), m2 = hn::Set(DQ(), 3), off = hn::Set(DQ(), 32);
  VS a0 = hn::Zero(DS()), a1 = hn::Zero(DS());
  for (int64_t sb = 0; sb < n / 256; ++sb, w += sizeof(BlockQ6_K)) {
    const auto* sc = reinterpret_cast<const int8_t*>(w + 192);
    const float d = half_at(w + 208);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* qh = w + 128 + 32 * h;
      for (int g = 0; g < 4; ++g) {
        const uint8_t* ql = w + 64 * h + 32 * (g & 1);
        const int64_t xb = 8 * sb + 4 * h + g;
        const int shift = 2 * g;
        // The 6-bit codes − 32 of values o + k .. o + k + Lanes of this group.
        const auto code = [&](int o, int k) {
          const VQ lo4 =
              g < 2 ? hn::And(widen_u8(ql + o + k), m4) : hn::ShiftRight<4>(widen_u8(ql + o + k));
          const VQ hi2 = hn::And(hn::ShiftRightSame(widen_u8(qh + o + k), shift), m2);
          return hn::Sub(hn::Or(lo4, hn::ShiftLeft<4>(hi2)), off);
        };
        const float dx = d * x.d[xb];
        const int s0 = 8 * h + 2 * g;  // the scales of values 0..15 and 16..31
        a0 = block_dot<16>([&](int k) { return code(0, k); }, x.q + 32 * xb, dx * sc[s0], a0);
        a1 = block_dot<16>([&](int k) { return code(16, k); }, x.q + 32 * xb + 16, dx * sc[s0 + 1],
                           a1);
      }
    }
  }
  return reduce(hn::Add(a0, a1));
}

}  // namespace HWY_NAMESPACE
}  // namespace edgellm::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace edgellm::simd {

HWY_EXPORT(QdotQ8_0);
HWY_EXPORT(QdotQ4_0);
HWY_EXPORT(QdotQ4_K);
HWY_EXPORT(QdotQ6_K);

QdotFn qdot_kernel(DotKind k) {
  detail::ensure_init();
  switch (k) {
    case DotKind::Q8_0:
      return EDGELLM_CHOSEN(QdotQ8_0);
    case DotKind::Q4_0:
      return EDGELLM_CHOSEN(QdotQ4_0);
    case DotKind::Q4_K:
      return EDGELLM_CHOSEN(QdotQ4_K);
    case DotKind::Q6_K:
      return EDGELLM_CHOSEN(QdotQ6_K);
    case DotKind::F32:
    case DotKind::F16:
    case DotKind::BF16:
      break;
  }
  return nullptr;
}

}  // namespace edgellm::simd
#endif  // HWY_ONCE
