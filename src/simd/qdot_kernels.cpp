// Integer decode-GEMV dot products (simd.h "qdot"), the portable kernels: a block-quantized row
// (Q8_0, Q4_0, Q4_K, Q6_K) against activations quantized to 8 bits per block of 32 (QuantX). The
// codes and the activation codes are widened to int16 and multiplied with a widening pairwise
// multiply-add (pmaddwd on x86, smlal on NEON), so a block's sum is an exact integer; only the
// block scale is applied in fp32, once per block. Against the fp32-activation kernels
// (dot_kernels.cpp) this removes the int→float conversion and the fp32 multiply of every weight,
// which is what bounded the quantized decode (compute-bound at ~0.3 cycles per weight there).
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

// Lanes(DQ) consecutive bytes widened to int16 lanes (weights: unsigned or signed; activations:
// signed).
inline VQ widen_u8(const uint8_t* p) {
  return hn::PromoteTo(DQ(), hn::LoadU(hn::Rebind<uint8_t, DQ>(), p));
}
inline VQ widen_i8(const int8_t* p) {
  return hn::PromoteTo(DQ(), hn::LoadU(hn::Rebind<int8_t, DQ>(), p));
}
inline VQ widen_i8(const uint8_t* p) { return widen_i8(reinterpret_cast<const int8_t*>(p)); }

// acc += scale · Σ_{k<kLen} w[k]·xq[k], the sum exact in int32; wq(k) gives the int16 weight codes
// of lanes k .. k+Lanes(DQ).
template <int kLen, class WQ>
inline VS block_dot(const WQ& wq, const int8_t* xq, float scale, VS acc) {
  const DQ dq;
  const DW dw;
  const int nq = static_cast<int>(hn::Lanes(dq));
  VW s0 = hn::Zero(dw), s1 = hn::Zero(dw);
  for (int k = 0; k < kLen; k += nq)
    s0 = hn::ReorderWidenMulAccumulate(dw, wq(k), widen_i8(xq + k), s0, s1);
  // Whatever lanes the target leaves the pairs in, the lanes of s0 + s1 sum to the dot product.
  return hn::MulAdd(hn::ConvertTo(DS(), hn::Add(s0, s1)), hn::Set(DS(), scale), acc);
}

inline float reduce(VS v) { return hn::GetLane(hn::SumOfLanes(DS(), v)); }

// Blocks alternate between two accumulators: one fp32 multiply-add chain per block would make the
// loop latency-bound (4 cycles per block) instead of throughput-bound.

// Σ over the row's 32-value blocks of block(w_b, x, b, ·), even and odd blocks on two fp32
// accumulators (kBytes: one block's size).
template <size_t kBytes, class Block>
inline float two_chains(const void* wv, const QuantX& x, int64_t n, const Block& block) {
  const auto* w = static_cast<const uint8_t*>(wv);
  const int64_t nb = n / 32;
  VS a0 = hn::Zero(DS()), a1 = hn::Zero(DS());
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2, w += 2 * kBytes) {
    a0 = block(w, x, b, a0);
    a1 = block(w + kBytes, x, b + 1, a1);
  }
  if (b < nb) a0 = block(w, x, b, a0);
  return reduce(hn::Add(a0, a1));
}

// Q8_0: x = d·q, q int8.
inline VS q8_0_block(const uint8_t* w, const QuantX& x, int64_t b, VS acc) {
  const uint8_t* qs = w + 2;
  return block_dot<32>([qs](int k) { return widen_i8(qs + k); }, x.q + 32 * b, half_at(w) * x.d[b],
                       acc);
}
float QdotQ8_0(const void* wv, const QuantX& x, int64_t n) {
  return two_chains<sizeof(BlockQ8_0)>(wv, x, n, q8_0_block);
}

// Q4_0: x = d·(nibble − 8); value k < 16 is the low nibble of qs[k], value 16 + k the high one
// (one load serves both).
inline VS q4_0_block(const uint8_t* w, const QuantX& x, int64_t b, VS acc) {
  const DQ dq;
  const DW dw;
  const int nq = static_cast<int>(hn::Lanes(dq));
  const VQ mask = hn::Set(dq, 0xf), eight = hn::Set(dq, 8);
  const uint8_t* qs = w + 2;
  const int8_t* xq = x.q + 32 * b;
  VW s0 = hn::Zero(dw), s1 = hn::Zero(dw);
  for (int k = 0; k < 16; k += nq) {
    const VQ raw = widen_u8(qs + k);
    s0 = hn::ReorderWidenMulAccumulate(dw, hn::Sub(hn::And(raw, mask), eight), widen_i8(xq + k), s0,
                                       s1);
    s0 = hn::ReorderWidenMulAccumulate(dw, hn::Sub(hn::ShiftRight<4>(raw), eight),
                                       widen_i8(xq + 16 + k), s0, s1);
  }
  return hn::MulAdd(hn::ConvertTo(DS(), hn::Add(s0, s1)), hn::Set(DS(), half_at(w) * x.d[b]), acc);
}
float QdotQ4_0(const void* wv, const QuantX& x, int64_t n) {
  return two_chains<sizeof(BlockQ4_0)>(wv, x, n, q4_0_block);
}

// Q4_K (256 values): sub-block j (32 values) = dd·sc_j·q − dmin·m_j; sub-blocks 2c and 2c + 1 are
// the low and high nibbles of qs[32c .. 32c + 31].
float QdotQ4_K(const void* wv, const QuantX& x, int64_t n) {
  const auto* w = static_cast<const uint8_t*>(wv);
  const DQ dq;
  const DW dw;
  const int nq = static_cast<int>(hn::Lanes(dq));
  const VQ mask = hn::Set(dq, 0xf);
  VS a0 = hn::Zero(DS()), a1 = hn::Zero(DS());
  // The mins term Σ_j dmin·m_j·d_j·s_j, summed per super-block as a vector of its 8 sub-blocks
  // (a scalar chain of 8 dependent multiply-adds would bound the loop).
  const hn::CappedTag<float, 8> d8;
  auto mins = hn::Zero(d8);
  HWY_ALIGN float mj[8], dsj[8];
  for (int64_t sb = 0; sb < n / 256; ++sb, w += sizeof(BlockQ4_K)) {
    const float dd = half_at(w), dmin = half_at(w + 2);
    uint8_t sc[8], m[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) edgellm::q4k_scale_min(j, w + 4, &sc[j], &m[j]);
    const uint8_t* qs = w + 16;
    const int8_t* xq = x.q + 256 * sb;
    const float* xd = x.d + 8 * sb;
    // Sub-blocks 2c and 2c + 1 share their 32 bytes: one load, low and high nibbles.
    for (int c = 0; c < 4; ++c) {
      VW s0 = hn::Zero(dw), s1 = hn::Zero(dw), t0 = hn::Zero(dw), t1 = hn::Zero(dw);
      for (int k = 0; k < 32; k += nq) {
        const VQ raw = widen_u8(qs + 32 * c + k);
        s0 = hn::ReorderWidenMulAccumulate(dw, hn::And(raw, mask), widen_i8(xq + 64 * c + k), s0,
                                           s1);
        t0 = hn::ReorderWidenMulAccumulate(dw, hn::ShiftRight<4>(raw),
                                           widen_i8(xq + 64 * c + 32 + k), t0, t1);
      }
      a0 = hn::MulAdd(hn::ConvertTo(DS(), hn::Add(s0, s1)),
                      hn::Set(DS(), dd * sc[2 * c] * xd[2 * c]), a0);
      a1 = hn::MulAdd(hn::ConvertTo(DS(), hn::Add(t0, t1)),
                      hn::Set(DS(), dd * sc[2 * c + 1] * xd[2 * c + 1]), a1);
    }
    for (int j = 0; j < 8; ++j) {
      mj[j] = dmin * m[j];
      dsj[j] = xd[j] * static_cast<float>(x.s[8 * sb + j]);
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
  const DQ dq;
  const DW dw;
  const int nq = static_cast<int>(hn::Lanes(dq));
  const VQ m4 = hn::Set(dq, 0xf), m2 = hn::Set(dq, 3), off = hn::Set(dq, 32);
  VS a0 = hn::Zero(DS()), a1 = hn::Zero(DS()), a2 = hn::Zero(DS()), a3 = hn::Zero(DS());
  for (int64_t sb = 0; sb < n / 256; ++sb, w += sizeof(BlockQ6_K)) {
    const auto* sc = reinterpret_cast<const int8_t*>(w + 192);
    const float d = half_at(w + 208);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = w + 64 * h;
      const uint8_t* qh = w + 128 + 32 * h;
      const int8_t* xq = x.q + 256 * sb + 128 * h;
      const float* xd = x.d + 8 * sb + 4 * h;
      // Each 16-value half (one scale per group) of the four 32-value groups: the ql bytes serve
      // groups g and g + 2 (low, high nibble), the qh byte all four (2 bits each).
      for (int o = 0; o < 32; o += 16) {
        VW s0 = hn::Zero(dw), s1 = hn::Zero(dw), s2 = hn::Zero(dw), s3 = hn::Zero(dw);
        VW u0 = hn::Zero(dw), u1 = hn::Zero(dw), u2 = hn::Zero(dw), u3 = hn::Zero(dw);
        for (int k = o; k < o + 16; k += nq) {
          const VQ la = widen_u8(ql + k), lb = widen_u8(ql + 32 + k), hb = widen_u8(qh + k);
          const VQ c0 = hn::Sub(hn::Or(hn::And(la, m4), hn::ShiftLeft<4>(hn::And(hb, m2))), off);
          const VQ c1 = hn::Sub(
              hn::Or(hn::And(lb, m4), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<2>(hb), m2))), off);
          const VQ c2 = hn::Sub(
              hn::Or(hn::ShiftRight<4>(la), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<4>(hb), m2))),
              off);
          const VQ c3 =
              hn::Sub(hn::Or(hn::ShiftRight<4>(lb), hn::ShiftLeft<4>(hn::ShiftRight<6>(hb))), off);
          s0 = hn::ReorderWidenMulAccumulate(dw, c0, widen_i8(xq + k), s0, u0);
          s1 = hn::ReorderWidenMulAccumulate(dw, c1, widen_i8(xq + 32 + k), s1, u1);
          s2 = hn::ReorderWidenMulAccumulate(dw, c2, widen_i8(xq + 64 + k), s2, u2);
          s3 = hn::ReorderWidenMulAccumulate(dw, c3, widen_i8(xq + 96 + k), s3, u3);
        }
        const int half = o / 16;
        const int8_t* sch = sc + 8 * h + half;  // group g's scale of this half: sch[2g]
        a0 =
            hn::MulAdd(hn::ConvertTo(DS(), hn::Add(s0, u0)), hn::Set(DS(), d * sch[0] * xd[0]), a0);
        a1 =
            hn::MulAdd(hn::ConvertTo(DS(), hn::Add(s1, u1)), hn::Set(DS(), d * sch[2] * xd[1]), a1);
        a2 =
            hn::MulAdd(hn::ConvertTo(DS(), hn::Add(s2, u2)), hn::Set(DS(), d * sch[4] * xd[2]), a2);
        a3 =
            hn::MulAdd(hn::ConvertTo(DS(), hn::Add(s3, u3)), hn::Set(DS(), d * sch[6] * xd[3]), a3);
      }
    }
  }
  return reduce(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)));
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

QdotFn qdot_portable_kernel(DotKind k) {
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

namespace {
// The VNNI kernels belong to the AVX-512 targets: EDGELLM_TARGET=avx2 (or lower) keeps them off.
bool avx512_active() {
  detail::ensure_init();
#if HWY_ARCH_X86
  const int64_t best = detail::g_active_bit.load(std::memory_order_acquire);
  return best == HWY_AVX3 || best == HWY_AVX3_DL;
#else
  return false;
#endif
}
}  // namespace

QdotFn qdot_kernel(DotKind k) {
  if (avx512_active())
    if (const QdotFn f = qdot_vnni_kernel(k)) return f;
  return qdot_portable_kernel(k);
}

PackedQdotFn packed_qdot_kernel() { return avx512_active() ? packed_qdot_vnni_kernel() : nullptr; }

PackedMaskQdotFn packed_mask_qdot_kernel() {
  return avx512_active() ? packed_mask_qdot_vnni_kernel() : nullptr;
}

}  // namespace edgellm::simd
#endif  // HWY_ONCE
