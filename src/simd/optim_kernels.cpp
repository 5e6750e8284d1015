// AdamW update kernels (simd.h "optimizer"), one Highway source compiled per target.
//
// fp32 state: the textbook update, one pass over p, g, m, v.
//
// 8-bit state (Dettmers et al. 2022, "8-bit Optimizers via Block-wise Quantization": block-wise
// scaling, a non-linear code, state dequantized, updated in fp32 and requantized every step):
// each block of kQ8Block consecutive values of a span has an fp32 scale, the block's largest
// magnitude; a value x is stored as an 8-bit float of x/scale ∈ [-1, 1]: sign, 4-bit exponent
// e ∈ [-14, 0] (code 1..15; code 0 = zero), 3-bit mantissa — relative steps of 1/8, magnitudes
// down to 2^-14 of the block's largest. The second moment is stored as u = sqrt(v) (u spans the
// gradient's range, v its square). Rounding is to nearest. (Stochastic rounding, tried first,
// keeps each step unbiased, but v is an average over ~1/(1−β2) = 1000 steps and re-rounding it
// every step accumulates that many independent errors: on the tiny-shape pretraining check it
// trained no better than round-to-nearest, and worse with 64-value blocks. A moment that decays
// uniformly across its block is carried by the block's scale, whose value is exact.) The
// parameter update itself uses the fp32 moments of this step, before they are requantized; a
// first moment is stored as 0 wherever u is, so that a flushed second moment can never divide a
// surviving first moment by eps.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "simd/hwy_config.h"
#include "simd/simd.h"
#include "simd/target.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/optim_kernels.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// foreach_target.h must come before highway.h.
#include "hwy/highway.h"
#include "simd/hwy_common-inl.h"

HWY_BEFORE_NAMESPACE();
namespace edgellm::simd {
namespace HWY_NAMESPACE {
using DU = hn::RebindToUnsigned<DF>;
using VU = hn::Vec<DU>;

void AdamWF32(float* p, const float* g, float* m, float* v, int64_t n, const AdamWStep& s) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const VF b1 = hn::Set(d, s.b1), c1 = hn::Set(d, 1.f - s.b1), b2 = hn::Set(d, s.b2),
           c2 = hn::Set(d, 1.f - s.b2), clip = hn::Set(d, s.clip), lr = hn::Set(d, s.lr_bc1),
           ibc2 = hn::Set(d, s.inv_bc2), eps = hn::Set(d, s.eps), decay = hn::Set(d, s.decay);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const VF gi = hn::Mul(hn::LoadU(d, g + i), clip);
    const VF mi = hn::MulAdd(b1, hn::LoadU(d, m + i), hn::Mul(c1, gi));
    const VF vi = hn::MulAdd(b2, hn::LoadU(d, v + i), hn::Mul(c2, hn::Mul(gi, gi)));
    hn::StoreU(mi, d, m + i);
    hn::StoreU(vi, d, v + i);
    const VF pi = hn::LoadU(d, p + i);
    const VF step = hn::Div(hn::Mul(lr, mi), hn::Add(hn::Sqrt(hn::Mul(vi, ibc2)), eps));
    hn::StoreU(hn::Sub(pi, hn::MulAdd(decay, pi, step)), d, p + i);
  }
  for (; i < n; ++i) adamw_f32_one(p[i], g[i], m[i], v[i], s);
}

// Code of x/scale (inv = 1/scale), rounded to nearest, as u32 lanes 0..255; simd.h
// q8_encode_one is the scalar twin.
inline VU EncodeQ8(VF x, VF inv) {
  const DF d;
  const DU du;
  const VF y = hn::Mul(x, inv);
  const VU sign = hn::ShiftRight<24>(hn::And(hn::BitCast(du, y), hn::Set(du, 0x80000000u)));
  // |y| <= 1 (the product can round just above 1) plus half of the lowest kept mantissa bit,
  // then truncated to 3 mantissa bits: a carry moves to the next code (and exponent). 1.0 plus
  // half a step stays at exponent 0.
  const VU mag =
      hn::Add(hn::BitCast(du, hn::Min(hn::Abs(y), hn::Set(d, 1.f))), hn::Set(du, 0x80000u));
  const VU e = hn::ShiftRight<23>(mag);  // biased exponent, 127 = 2^0
  const VU code = hn::Or(hn::ShiftRight<20>(hn::Sub(mag, hn::Set(du, (127u - 15u) << 23))), sign);
  // Below 2^-14 (biased exponent < 113): zero.
  return hn::IfThenZeroElse(hn::Lt(e, hn::Set(du, 127u - 14u)), code);
}

inline VF DecodeQ8(VU code, VF scale) {
  const DF d;
  const DU du;
  const VU mag = hn::And(code, hn::Set(du, 0x7fu));
  // (e_code + 112) << 23 | mantissa << 20: the fp32 bits of (1 + m/8)·2^(e_code − 15).
  const VU bits = hn::Or(hn::ShiftLeft<20>(hn::Add(mag, hn::Set(du, (127u - 15u) << 3))),
                         hn::ShiftLeft<24>(hn::And(code, hn::Set(du, 0x80u))));
  const VF x = hn::Mul(hn::BitCast(d, bits), scale);
  return hn::IfThenZeroElse(hn::RebindMask(d, hn::Eq(mag, hn::Zero(du))), x);
}

void AdamWQ8(float* p, const float* g, uint8_t* mq, float* ms, uint8_t* uq, float* us, int64_t n,
             const AdamWStep& s) {
  const DF d;
  const DU du;
  const DI di;
  const hn::Rebind<uint8_t, DI> d8;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const VF b1 = hn::Set(d, s.b1), c1 = hn::Set(d, 1.f - s.b1), b2 = hn::Set(d, s.b2),
           c2 = hn::Set(d, 1.f - s.b2), clip = hn::Set(d, s.clip), lr = hn::Set(d, s.lr_bc1),
           ibc2 = hn::Set(d, s.inv_bc2), eps = hn::Set(d, s.eps), decay = hn::Set(d, s.decay);
  alignas(64) float mt[kQ8Block], ut[kQ8Block];
  for (int64_t b0 = 0, blk = 0; b0 < n; b0 += kQ8Block, ++blk) {
    const int64_t len = n - b0 < kQ8Block ? n - b0 : kQ8Block;
    const VF msc = hn::Set(d, ms[blk]), usc = hn::Set(d, us[blk]);
    VF mmax = hn::Zero(d), umax = hn::Zero(d);
    int64_t i = 0;
    // Pass 1: decode, update in fp32, apply to the parameters, keep the new moments.
    for (; i + N <= len; i += N) {
      const int64_t k = b0 + i;
      const VF gi = hn::Mul(hn::LoadU(d, g + k), clip);
      const VF m0 = DecodeQ8(hn::PromoteTo(du, hn::LoadU(d8, mq + k)), msc);
      const VF u0 = DecodeQ8(hn::PromoteTo(du, hn::LoadU(d8, uq + k)), usc);
      const VF mi = hn::MulAdd(b1, m0, hn::Mul(c1, gi));
      const VF vi = hn::MulAdd(b2, hn::Mul(u0, u0), hn::Mul(c2, hn::Mul(gi, gi)));
      const VF ui = hn::Sqrt(vi);
      const VF pi = hn::LoadU(d, p + k);
      const VF step = hn::Div(hn::Mul(lr, mi), hn::Add(hn::Sqrt(hn::Mul(vi, ibc2)), eps));
      hn::StoreU(hn::Sub(pi, hn::MulAdd(decay, pi, step)), d, p + k);
      hn::Store(mi, d, mt + i);
      hn::Store(ui, d, ut + i);
      mmax = hn::Max(mmax, hn::Abs(mi));
      umax = hn::Max(umax, ui);
    }
    float mx = hn::GetLane(hn::MaxOfLanes(d, mmax)), ux = hn::GetLane(hn::MaxOfLanes(d, umax));
    for (; i < len; ++i) {
      const int64_t k = b0 + i;
      float m0 = q8_decode_one(mq[k], ms[blk]), u0 = q8_decode_one(uq[k], us[blk]);
      float v0 = u0 * u0;
      adamw_f32_one(p[k], g[k], m0, v0, s);
      mt[i] = m0;
      ut[i] = std::sqrt(v0);
      mx = std::fmax(mx, std::fabs(m0));
      ux = std::fmax(ux, ut[i]);
    }
    // Pass 2: the new scales, then the codes.
    ms[blk] = mx;
    us[blk] = ux;
    const VF minv = hn::Set(d, q8_inverse_scale(mx)), uinv = hn::Set(d, q8_inverse_scale(ux));
    for (i = 0; i + N <= len; i += N) {
      const VU uc = EncodeQ8(hn::Load(d, ut + i), uinv);
      VU mc = EncodeQ8(hn::Load(d, mt + i), minv);
      mc = hn::IfThenZeroElse(hn::Eq(uc, hn::Zero(du)), mc);
      hn::StoreU(hn::DemoteTo(d8, hn::BitCast(di, mc)), d8, mq + b0 + i);
      hn::StoreU(hn::DemoteTo(d8, hn::BitCast(di, uc)), d8, uq + b0 + i);
    }
    for (; i < len; ++i) {
      const uint8_t uc = q8_encode_one(ut[i], ux);
      mq[b0 + i] = uc == 0 ? 0 : q8_encode_one(mt[i], mx);
      uq[b0 + i] = uc;
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace edgellm::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace edgellm::simd {

HWY_EXPORT(AdamWF32);
HWY_EXPORT(AdamWQ8);

void adamw_f32(float* p, const float* g, float* m, float* v, int64_t n, const AdamWStep& s) {
  detail::ensure_init();
  HWY_DYNAMIC_DISPATCH(AdamWF32)(p, g, m, v, n, s);
}

void adamw_q8(float* p, const float* g, uint8_t* mq, float* ms, uint8_t* uq, float* us, int64_t n,
              const AdamWStep& s) {
  detail::ensure_init();
  HWY_DYNAMIC_DISPATCH(AdamWQ8)(p, g, mq, ms, uq, us, n, s);
}

}  // namespace edgellm::simd
#endif
