// Element-wise kernels (simd.h: exp/softmax/activations, RMSNorm, RoPE, attention, fp16/bf16
// conversion), one Highway source compiled per target.
//
// exp: range reduction x = n·ln2 + r (|r| <= ln2/2, ln2 split in two for exactness), exp(r) by
// its degree-7 Taylor polynomial (truncation error < 1e-8 relative on that range), then 2^n
// applied as two exact power-of-two factors 2^(n>>1)·2^(n-(n>>1)) built in the exponent field, so
// results that fall into the denormals round once, as a scalef would. x is clamped to
// [-104, 89]: below that every result is 0, above +inf.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "simd/half.h"
#include "simd/hwy_config.h"
#include "simd/simd.h"
#include "simd/target.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/vec_kernels.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// foreach_target.h must come before highway.h.
#include "hwy/highway.h"
#include "simd/hwy_common-inl.h"

HWY_BEFORE_NAMESPACE();
namespace edgellm::simd {
namespace HWY_NAMESPACE {
inline VF Exp(DF d, VF x) {
  const DI di;
  x = hn::Max(hn::Min(x, hn::Set(d, 89.f)), hn::Set(d, -104.f));
  const auto ni = hn::NearestInt(hn::Mul(x, hn::Set(d, 1.44269504088896341f)));
  const VF n = hn::ConvertTo(d, ni);
  VF r = hn::NegMulAdd(n, hn::Set(d, 0.693359375f), x);
  r = hn::NegMulAdd(n, hn::Set(d, -2.12194440e-4f), r);
  // Horner: 1 + r + r²/2 + r³/6 + r⁴/24 + r⁵/120 + r⁶/720 + r⁷/5040
  VF p = hn::Set(d, 1.f / 5040);
  p = hn::MulAdd(p, r, hn::Set(d, 1.f / 720));
  p = hn::MulAdd(p, r, hn::Set(d, 1.f / 120));
  p = hn::MulAdd(p, r, hn::Set(d, 1.f / 24));
  p = hn::MulAdd(p, r, hn::Set(d, 1.f / 6));
  p = hn::MulAdd(p, r, hn::Set(d, 0.5f));
  p = hn::MulAdd(p, r, hn::Set(d, 1.f));
  p = hn::MulAdd(p, r, hn::Set(d, 1.f));
  // n in [-150, 129]: each half is in [-75, 65], a normal power of two.
  const auto n1 = hn::ShiftRight<1>(ni);
  const auto n2 = hn::Sub(ni, n1);
  const auto bias = hn::Set(di, 127);
  const VF s1 = hn::BitCast(d, hn::ShiftLeft<23>(hn::Add(n1, bias)));
  const VF s2 = hn::BitCast(d, hn::ShiftLeft<23>(hn::Add(n2, bias)));
  return hn::Mul(hn::Mul(p, s1), s2);
}

inline VF Sigmoid(DF d, VF g) {
  const VF one = hn::Set(d, 1.f);
  return hn::Div(one, hn::Add(one, Exp(d, hn::Neg(g))));
}

void ExpN(const float* x, float* y, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(Exp(d, hn::LoadU(d, x + i)), d, y + i);
  if (i < n) {  // tail through a padded buffer: loads and stores stay inside x and y
    HWY_ALIGN float buf[16] = {};
    std::memcpy(buf, x + i, static_cast<size_t>(n - i) * 4);
    hn::Store(Exp(d, hn::Load(d, buf)), d, buf);
    std::memcpy(y + i, buf, static_cast<size_t>(n - i) * 4);
  }
}

// Lanes of at most 16 vectors (256 terms) are summed in fp32 before the total goes to double.
double SumExpShifted(const float* x, int64_t n, float shift) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const VF sh = hn::Set(d, shift);
  double s = 0;
  int64_t i = 0;
  while (i + N <= n) {
    VF acc = hn::Zero(d);
    for (int k = 0; k < 16 && i + N <= n; ++k, i += N)
      acc = hn::Add(acc, Exp(d, hn::Sub(hn::LoadU(d, x + i), sh)));
    s += hn::GetLane(hn::SumOfLanes(d, acc));
  }
  if (i < n) {
    HWY_ALIGN float buf[16];
    for (int64_t k = 0; k < N; ++k) buf[k] = i + k < n ? x[i + k] - shift : -INFINITY;
    s += hn::GetLane(hn::SumOfLanes(d, Exp(d, hn::Load(d, buf))));
  }
  return s;
}

void AxpyExpShifted(float* dd, const float* x, int64_t n, float shift, float scale) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const VF sh = hn::Set(d, shift), sc = hn::Set(d, scale);
  int64_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::MulAdd(sc, Exp(d, hn::Sub(hn::LoadU(d, x + i), sh)), hn::LoadU(d, dd + i)), d,
               dd + i);
  for (; i < n; ++i) dd[i] += scale * std::exp(x[i] - shift);
}

void Swiglu(float* out, const float* gate, const float* up, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const VF g = hn::LoadU(d, gate + i);
    hn::StoreU(hn::Mul(hn::Mul(g, Sigmoid(d, g)), hn::LoadU(d, up + i)), d, out + i);
  }
  for (; i < n; ++i) out[i] = gate[i] / (1.f + std::exp(-gate[i])) * up[i];
}

// d silu/dg = s + g·s·(1 − s), s = sigmoid(g)
void SwigluBackward(float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                    int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const VF one = hn::Set(d, 1.f);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const VF g = hn::LoadU(d, gate + i), u = hn::LoadU(d, up + i), dy = hn::LoadU(d, dout + i);
    const VF s = Sigmoid(d, g);
    const VF dsilu = hn::Mul(s, hn::MulAdd(g, hn::Sub(one, s), one));
    hn::StoreU(hn::MulAdd(hn::Mul(dy, u), dsilu, hn::LoadU(d, dgate + i)), d, dgate + i);
    hn::StoreU(hn::MulAdd(dy, hn::Mul(g, s), hn::LoadU(d, dup + i)), d, dup + i);
  }
  for (; i < n; ++i) {
    const float g = gate[i], s = 1.f / (1.f + std::exp(-g));
    dgate[i] += dout[i] * up[i] * s * (1.f + g * (1.f - s));
    dup[i] += dout[i] * g * s;
  }
}

// Squares accumulated in double lanes (C can be 8k; this mean is RMSNorm's only reduction).
double SumSquares(const float* x, int64_t n) {
#if HWY_HAVE_FLOAT64
  const hn::CappedTag<double, 8> dd;
  const hn::Rebind<float, decltype(dd)> dh;
  const int64_t N = static_cast<int64_t>(hn::Lanes(dd));
  auto a0 = hn::Zero(dd), a1 = hn::Zero(dd);
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const auto v0 = hn::PromoteTo(dd, hn::LoadU(dh, x + i));
    const auto v1 = hn::PromoteTo(dd, hn::LoadU(dh, x + i + N));
    a0 = hn::MulAdd(v0, v0, a0);
    a1 = hn::MulAdd(v1, v1, a1);
  }
  double s = hn::GetLane(hn::SumOfLanes(dd, hn::Add(a0, a1)));
#else
  int64_t i = 0;
  double s = 0;
#endif
  for (; i < n; ++i) s += double(x[i]) * x[i];
  return s;
}

void ScaleMul(float* out, const float* x, float sc, const float* w, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const VF s = hn::Set(d, sc);
  int64_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(d, x + i), s), hn::LoadU(d, w + i)), d, out + i);
  for (; i < n; ++i) out[i] = x[i] * sc * w[i];
}

void RopePairs(float* p, const float* c, const float* s, int64_t half) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + N <= half; i += N) {
    VF x0, x1;
    hn::LoadInterleaved2(d, p + 2 * i, x0, x1);
    const VF cv = hn::LoadU(d, c + i), sv = hn::LoadU(d, s + i);
    const VF y0 = hn::NegMulAdd(x1, sv, hn::Mul(x0, cv));  // x0·c − x1·s
    const VF y1 = hn::MulAdd(x1, cv, hn::Mul(x0, sv));     // x0·s + x1·c
    hn::StoreInterleaved2(y0, y1, d, p + 2 * i);
  }
  for (; i < half; ++i) {
    const float x0 = p[2 * i], x1 = p[2 * i + 1];
    p[2 * i] = x0 * c[i] - x1 * s[i];
    p[2 * i + 1] = x0 * s[i] + x1 * c[i];
  }
}

// Row softmax in place over p[0, n) (n >= 1), zeros in p[n, S): the row max, exp(x − max) stored
// with its sum (fp32 lanes over at most 16 vectors, then double), one scaling pass. The tails
// run through padded buffers (-inf lanes: exp gives 0), so every value takes the same Exp.
void SoftmaxPrefix(float* p, int64_t n, int64_t S) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  VF mx = hn::Set(d, -INFINITY);
  int64_t i = 0;
  for (; i + N <= n; i += N) mx = hn::Max(mx, hn::LoadU(d, p + i));
  float m = hn::GetLane(hn::MaxOfLanes(d, mx));
  for (int64_t k = i; k < n; ++k) m = p[k] > m ? p[k] : m;
  const VF sh = hn::Set(d, m);
  double sum = 0;
  i = 0;
  while (i + N <= n) {
    VF acc = hn::Zero(d);
    for (int k = 0; k < 16 && i + N <= n; ++k, i += N) {
      const VF e = Exp(d, hn::Sub(hn::LoadU(d, p + i), sh));
      hn::StoreU(e, d, p + i);
      acc = hn::Add(acc, e);
    }
    sum += hn::GetLane(hn::SumOfLanes(d, acc));
  }
  if (i < n) {
    HWY_ALIGN float buf[16];
    for (int64_t k = 0; k < N; ++k) buf[k] = i + k < n ? p[i + k] - m : -INFINITY;
    const VF e = Exp(d, hn::Load(d, buf));
    sum += hn::GetLane(hn::SumOfLanes(d, e));
    hn::Store(e, d, buf);
    std::memcpy(p + i, buf, static_cast<size_t>(n - i) * 4);
  }
  const float inv = static_cast<float>(1.0 / sum);
  const VF iv = hn::Set(d, inv);
  i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::LoadU(d, p + i), iv), d, p + i);
  for (; i < n; ++i) p[i] *= inv;
  if (S > n) std::memset(p + n, 0, static_cast<size_t>(S - n) * 4);
}

// The softmax backward of one row: d ← p ⊙ (d − Σ p·d) over [0, n) (Σ in fp32 lanes over at most
// 16 vectors, then double).
void SoftmaxBackwardRow(float* dd, const float* p, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  double dot = 0;
  int64_t i = 0;
  while (i + N <= n) {
    VF acc = hn::Zero(d);
    for (int k = 0; k < 16 && i + N <= n; ++k, i += N)
      acc = hn::MulAdd(hn::LoadU(d, p + i), hn::LoadU(d, dd + i), acc);
    dot += hn::GetLane(hn::SumOfLanes(d, acc));
  }
  for (int64_t k = i; k < n; ++k) dot += double(p[k]) * dd[k];
  const float fd = static_cast<float>(dot);
  const VF vd = hn::Set(d, fd);
  i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::Mul(hn::LoadU(d, p + i), hn::Sub(hn::LoadU(d, dd + i), vd)), d, dd + i);
  for (; i < n; ++i) dd[i] = p[i] * (dd[i] - fd);
}

void Axpy(float* y, float a, const float* x, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const VF av = hn::Set(d, a);
  int64_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::MulAdd(av, hn::LoadU(d, x + i), hn::LoadU(d, y + i)), d, y + i);
  for (; i < n; ++i) y[i] += a * x[i];
}

// fp16 conversion: the hardware's where EDGELLM_HW_F16 (hwy_common-inl.h; F16C on x86, FCVT on
// aarch64, both round to nearest even), else the scalar conversion.

void F16ToF32(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  int64_t i = 0;
#if EDGELLM_HW_F16
  const DF d;
  const hn::Rebind<hwy::float16_t, DF> dh;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  for (; i + N <= n; i += N)
    hn::StoreU(hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p + 2 * i))),
               d, dst + i);
#endif
  for (; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    dst[i] = half_to_float(h);
  }
}

void F32ToF16(const float* src, void* dst, int64_t n) {
  auto* p = static_cast<uint8_t*>(dst);
  int64_t i = 0;
#if EDGELLM_HW_F16
  const DF d;
  const hn::Rebind<hwy::float16_t, DF> dh;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  for (; i + N <= n; i += N)
    hn::StoreU(hn::DemoteTo(dh, hn::LoadU(d, src + i)), dh,
               reinterpret_cast<hwy::float16_t*>(p + 2 * i));
#endif
  for (; i < n; ++i) {
    const uint16_t h = float_to_half(src[i]);
    std::memcpy(p + 2 * i, &h, 2);
  }
}

void BF16ToF32(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  const DF d;
  const hn::RebindToUnsigned<DF> du;
  const hn::Rebind<uint16_t, DF> d16;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto u = hn::PromoteTo(du, hn::LoadU(d16, reinterpret_cast<const uint16_t*>(p + 2 * i)));
    hn::StoreU(hn::BitCast(d, hn::ShiftLeft<16>(u)), d, dst + i);
  }
  for (; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    dst[i] = bfloat_to_float(h);
  }
}

// Round to nearest even on the bits: x + 0x7fff + lsb(x >> 16), then the high half; NaNs are
// kept quiet (| 0x40) as in float_to_bfloat.
void F32ToBF16(const float* src, void* dst, int64_t n) {
  auto* p = static_cast<uint8_t*>(dst);
  const DF d;
  const hn::RebindToUnsigned<DF> du;
  const hn::Rebind<uint16_t, DF> d16;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto one = hn::Set(du, 1u), bias = hn::Set(du, 0x7fffu), qnan = hn::Set(du, 0x40u);
  const auto abs_mask = hn::Set(du, 0x7fffffffu), inf = hn::Set(du, 0x7f800000u);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto x = hn::BitCast(du, hn::LoadU(d, src + i));
    const auto rounded =
        hn::ShiftRight<16>(hn::Add(x, hn::Add(bias, hn::And(hn::ShiftRight<16>(x), one))));
    const auto nan = hn::Or(hn::ShiftRight<16>(x), qnan);
    // Unsigned compare through the signed type is safe: both sides are < 2^31.
    const hn::RebindToSigned<DF> di;
    const auto is_nan =
        hn::RebindMask(du, hn::Gt(hn::BitCast(di, hn::And(x, abs_mask)), hn::BitCast(di, inf)));
    const auto h = hn::IfThenElse(is_nan, nan, rounded);
    hn::StoreU(hn::DemoteTo(d16, hn::BitCast(di, h)), d16, reinterpret_cast<uint16_t*>(p + 2 * i));
  }
  for (; i < n; ++i) {
    const uint16_t h = float_to_bfloat(src[i]);
    std::memcpy(p + 2 * i, &h, 2);
  }
}

#undef EDGELLM_HW_F16

}  // namespace HWY_NAMESPACE
}  // namespace edgellm::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace edgellm::simd {

HWY_EXPORT(ExpN);
HWY_EXPORT(SumExpShifted);
HWY_EXPORT(AxpyExpShifted);
HWY_EXPORT(Swiglu);
HWY_EXPORT(SwigluBackward);
HWY_EXPORT(SumSquares);
HWY_EXPORT(ScaleMul);
HWY_EXPORT(RopePairs);
HWY_EXPORT(Axpy);
HWY_EXPORT(SoftmaxPrefix);
HWY_EXPORT(SoftmaxBackwardRow);
HWY_EXPORT(F16ToF32);
HWY_EXPORT(F32ToF16);
HWY_EXPORT(BF16ToF32);
HWY_EXPORT(F32ToBF16);

void exp_n(const float* x, float* y, int64_t n) {
  detail::ensure_init();
  HWY_DYNAMIC_DISPATCH(ExpN)(x, y, n);
}
double sum_exp_shifted(const float* x, int64_t n, float shift) {
  detail::ensure_init();
  return HWY_DYNAMIC_DISPATCH(SumExpShifted)(x, n, shift);
}
void axpy_exp_shifted(float* d, const float* x, int64_t n, float shift, float scale) {
  detail::ensure_init();
  HWY_DYNAMIC_DISPATCH(AxpyExpShifted)(d, x, n, shift, scale);
}
void swiglu(float* out, const float* gate, const float* up, int64_t n) {
  detail::ensure_init();
  HWY_DYNAMIC_DISPATCH(Swiglu)(out, gate, up, n);
}
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n) {
  detail::ensure_init();
  HWY_DYNAMIC_DISPATCH(SwigluBackward)(dgate, dup, dout, gate, up, n);
}
double sum_squares(const float* x, int64_t n) {
  detail::ensure_init();
  return HWY_DYNAMIC_DISPATCH(SumSquares)(x, n);
}
void scale_mul(float* out, const float* x, float s, const float* w, int64_t n) {
  detail::ensure_init();
  HWY_DYNAMIC_DISPATCH(ScaleMul)(out, x, s, w, n);
}
void rope_pairs(float* p, const float* c, const float* s, int64_t half) {
  detail::ensure_init();
  HWY_DYNAMIC_DISPATCH(RopePairs)(p, c, s, half);
}
void axpy(float* y, float a, const float* x, int64_t n) {
  detail::ensure_init();
  HWY_DYNAMIC_DISPATCH(Axpy)(y, a, x, n);
}
void softmax_prefix(float* p, int64_t n, int64_t S) {
  detail::ensure_init();
  HWY_DYNAMIC_DISPATCH(SoftmaxPrefix)(p, n, S);
}
void softmax_backward_row(float* d, const float* p, int64_t n) {
  detail::ensure_init();
  HWY_DYNAMIC_DISPATCH(SoftmaxBackwardRow)(d, p, n);
}
void f16_to_f32_n(const void* src, float* dst, int64_t n) {
  detail::ensure_init();
  HWY_DYNAMIC_DISPATCH(F16ToF32)(src, dst, n);
}
void f32_to_f16_n(const float* src, void* dst, int64_t n) {
  detail::ensure_init();
  HWY_DYNAMIC_DISPATCH(F32ToF16)(src, dst, n);
}
void bf16_to_f32_n(const void* src, float* dst, int64_t n) {
  detail::ensure_init();
  HWY_DYNAMIC_DISPATCH(BF16ToF32)(src, dst, n);
}
void f32_to_bf16_n(const float* src, void* dst, int64_t n) {
  detail::ensure_init();
  HWY_DYNAMIC_DISPATCH(F32ToBF16)(src, dst, n);
}

}  // namespace edgellm::simd
#endif  // HWY_ONCE
