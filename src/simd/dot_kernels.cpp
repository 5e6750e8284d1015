// Decode-GEMV dot products (simd.h "dot"), one Highway source compiled per target. Each block
// format unpacks its codes straight into fp32 lanes and applies each (sub-)block scale once to
// the partial sum, so results differ from decode-then-dot only by rounding order. Vectors are
// capped at 16 fp32 lanes: a 32-value block is then always a whole number of vectors.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "simd/half.h"
#include "simd/hwy_config.h"
#include "simd/simd.h"
#include "simd/target.h"
// Block layouts only (header-only, no link dependency on the tensor module).
#include "tensor/quant_blocks.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/dot_kernels.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// foreach_target.h must come before highway.h.
#include "hwy/highway.h"
#include "simd/hwy_common-inl.h"
#include "simd/hwy_dispatch.h"

HWY_BEFORE_NAMESPACE();
namespace edgellm::simd {
namespace HWY_NAMESPACE {

// N consecutive uint8 / int8 values widened to int32 lanes, then to fp32.
inline hn::Vec<DI> u8_lanes(DF d, const uint8_t* p) {
  const hn::Rebind<uint8_t, DF> d8;
  return hn::BitCast(DI(), hn::PromoteTo(hn::RebindToUnsigned<DF>(), hn::LoadU(d8, p)));
}
inline VF i8_to_f(DF d, const uint8_t* p) {
  const hn::Rebind<int8_t, DF> d8;
  return hn::ConvertTo(d, hn::PromoteTo(DI(), hn::LoadU(d8, reinterpret_cast<const int8_t*>(p))));
}

// An fp32 value at any byte address (memcpy: no alignment assumed).
inline float load_f32(const float* p) {
  float v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

float DotF32(const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  VF a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    a0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), a0);
    a1 = hn::MulAdd(hn::LoadU(d, a + i + N), hn::LoadU(d, b + i + N), a1);
    a2 = hn::MulAdd(hn::LoadU(d, a + i + 2 * N), hn::LoadU(d, b + i + 2 * N), a2);
    a3 = hn::MulAdd(hn::LoadU(d, a + i + 3 * N), hn::LoadU(d, b + i + 3 * N), a3);
  }
  for (; i + N <= n; i += N) a0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), a0);
  float s = sum(d, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)));
  // Rows of a mapped file may sit at any byte offset (safetensors does not align its data):
  // the scalar tail loads like LoadU does.
  for (; i < n; ++i) s += load_f32(a + i) * load_f32(b + i);
  return s;
}

void Dot4F32(const float* r0, const float* r1, const float* r2, const float* r3, const float* x,
             int64_t n, float* out) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  VF a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const VF xv = hn::LoadU(d, x + i);
    a0 = hn::MulAdd(hn::LoadU(d, r0 + i), xv, a0);
    a1 = hn::MulAdd(hn::LoadU(d, r1 + i), xv, a1);
    a2 = hn::MulAdd(hn::LoadU(d, r2 + i), xv, a2);
    a3 = hn::MulAdd(hn::LoadU(d, r3 + i), xv, a3);
  }
  float s0 = sum(d, a0), s1 = sum(d, a1), s2 = sum(d, a2), s3 = sum(d, a3);
  for (; i < n; ++i) {
    const float xi = load_f32(x + i);
    s0 += load_f32(r0 + i) * xi;
    s1 += load_f32(r1 + i) * xi;
    s2 += load_f32(r2 + i) * xi;
    s3 += load_f32(r3 + i) * xi;
  }
  out[0] = s0;
  out[1] = s1;
  out[2] = s2;
  out[3] = s3;
}

template <bool kBF16>
inline VF half_lanes(DF d, const uint8_t* p) {
  if constexpr (kBF16) {
    const hn::Rebind<uint16_t, DF> d16;
    const auto u = hn::PromoteTo(hn::RebindToUnsigned<DF>(),
                                 hn::LoadU(d16, reinterpret_cast<const uint16_t*>(p)));
    return hn::BitCast(d, hn::ShiftLeft<16>(u));
  } else {
#if EDGELLM_HW_F16
    const hn::Rebind<hwy::float16_t, DF> d16;
    return hn::PromoteTo(d, hn::LoadU(d16, reinterpret_cast<const hwy::float16_t*>(p)));
#else
    HWY_ALIGN float buf[16];
    for (size_t j = 0; j < hn::Lanes(d); ++j) buf[j] = half_at(p + 2 * j);
    return hn::Load(d, buf);
#endif
  }
}

template <bool kBF16>
float DotHalf(const uint8_t* w, const float* x, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  VF a0 = hn::Zero(d), a1 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    a0 = hn::MulAdd(half_lanes<kBF16>(d, w + 2 * i), hn::LoadU(d, x + i), a0);
    a1 = hn::MulAdd(half_lanes<kBF16>(d, w + 2 * (i + N)), hn::LoadU(d, x + i + N), a1);
  }
  for (; i + N <= n; i += N)
    a0 = hn::MulAdd(half_lanes<kBF16>(d, w + 2 * i), hn::LoadU(d, x + i), a0);
  float s = sum(d, hn::Add(a0, a1));
  for (; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, w + 2 * i, 2);
    s += (kBF16 ? bfloat_to_float(h) : half_to_float(h)) * x[i];
  }
  return s;
}

float DotF16(const void* w, const float* x, int64_t n) {
  return DotHalf<false>(static_cast<const uint8_t*>(w), x, n);
}
float DotBF16(const void* w, const float* x, int64_t n) {
  return DotHalf<true>(static_cast<const uint8_t*>(w), x, n);
}

// Q8_0: f16 d, int8 q[32] (34 bytes); x = d*q.
float DotQ8_0(const void* wv, const float* x, int64_t nb) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const auto* w = static_cast<const uint8_t*>(wv);
  VF acc = hn::Zero(d);
  for (int64_t b = 0; b < nb; ++b, w += sizeof(BlockQ8_0), x += 32) {
    VF s = hn::Zero(d);
    for (size_t j = 0; j < 32; j += N)
      s = hn::MulAdd(i8_to_f(d, w + 2 + j), hn::LoadU(d, x + j), s);
    acc = hn::MulAdd(hn::Set(d, half_at(w)), s, acc);
  }
  return sum(d, acc);
}

// Q4_0: f16 d, u8 qs[16] (18 bytes); value j < 16 is the low nibble of qs[j], value 16+j the
// high nibble; x = d*(nibble-8).
float DotQ4_0(const void* wv, const float* x, int64_t nb) {
  const DF d;
  const DI di;
  const size_t N = hn::Lanes(d);
  const auto* w = static_cast<const uint8_t*>(wv);
  const auto mask = hn::Set(di, 0xf), eight = hn::Set(di, 8);
  VF acc = hn::Zero(d);
  for (int64_t b = 0; b < nb; ++b, w += sizeof(BlockQ4_0), x += 32) {
    VF s = hn::Zero(d);
    for (size_t j = 0; j < 16; j += N) {
      const auto q = u8_lanes(d, w + 2 + j);
      const VF lo = hn::ConvertTo(d, hn::Sub(hn::And(q, mask), eight));
      const VF hi = hn::ConvertTo(d, hn::Sub(hn::ShiftRight<4>(q), eight));
      s = hn::MulAdd(lo, hn::LoadU(d, x + j), s);
      s = hn::MulAdd(hi, hn::LoadU(d, x + 16 + j), s);
    }
    acc = hn::MulAdd(hn::Set(d, half_at(w)), s, acc);
  }
  return sum(d, acc);
}

// Q4_K (144 bytes / 256 values): x = d*sc*q - dmin*m, so
// dot = sum_sub d*sc*(q . x_sub) - dmin*m*sum(x_sub).
float DotQ4_K(const void* wv, const float* x, int64_t nb) {
  const DF d;
  const DI di;
  const size_t N = hn::Lanes(d);
  const auto* w = static_cast<const uint8_t*>(wv);
  const auto mask = hn::Set(di, 0xf);
  VF acc = hn::Zero(d), accm = hn::Zero(d);
  for (int64_t b = 0; b < nb; ++b, w += sizeof(BlockQ4_K), x += 256) {
    const float dd = half_at(w), dmin = half_at(w + 2);
    const uint8_t* scales = w + 4;
    const uint8_t* qs = w + 16;
    for (int j = 0; j < 4; ++j) {
      uint8_t sc0, m0, sc1, m1;
      edgellm::q4k_scale_min(2 * j, scales, &sc0, &m0);
      edgellm::q4k_scale_min(2 * j + 1, scales, &sc1, &m1);
      const float* xj = x + 64 * j;
      VF sl = hn::Zero(d), sh = hn::Zero(d), xl = hn::Zero(d), xh = hn::Zero(d);
      for (size_t k = 0; k < 32; k += N) {
        const auto q = u8_lanes(d, qs + 32 * j + k);
        const VF x0 = hn::LoadU(d, xj + k), x1 = hn::LoadU(d, xj + 32 + k);
        sl = hn::MulAdd(hn::ConvertTo(d, hn::And(q, mask)), x0, sl);
        sh = hn::MulAdd(hn::ConvertTo(d, hn::ShiftRight<4>(q)), x1, sh);
        xl = hn::Add(xl, x0);
        xh = hn::Add(xh, x1);
      }
      acc = hn::MulAdd(hn::Set(d, dd * sc0), sl, acc);
      acc = hn::MulAdd(hn::Set(d, dd * sc1), sh, acc);
      accm = hn::MulAdd(hn::Set(d, dmin * m0), xl, accm);
      accm = hn::MulAdd(hn::Set(d, dmin * m1), xh, accm);
    }
  }
  return sum(d, hn::Sub(acc, accm));
}

// Q6_K (210 bytes / 256 values): ql[128] low 4 bits, qh[64] high 2 bits, int8 scales[16], f16 d;
// x = d*scale*(q-32). Sub-blocks of 16 values; N <= 16 lanes keeps one scale per vector.
float DotQ6_K(const void* wv, const float* x, int64_t nb) {
  const DF d;
  const DI di;
  const size_t N = hn::Lanes(d);
  const auto* w = static_cast<const uint8_t*>(wv);
  const auto m4 = hn::Set(di, 0xf), m2 = hn::Set(di, 3), off = hn::Set(di, 32);
  VF acc = hn::Zero(d);
  for (int64_t b = 0; b < nb; ++b, w += sizeof(BlockQ6_K), x += 256) {
    const uint8_t* ql0 = w;
    const uint8_t* qh0 = w + 128;
    const auto* sc0 = reinterpret_cast<const int8_t*>(w + 192);
    const float dd = half_at(w + 208);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = ql0 + 64 * h;
      const uint8_t* qh = qh0 + 32 * h;
      const int8_t* sc = sc0 + 8 * h;
      const float* y = x + 128 * h;
      for (size_t l = 0; l < 32; l += N) {
        const auto a = u8_lanes(d, ql + l), bq = u8_lanes(d, ql + 32 + l), hb = u8_lanes(d, qh + l);
        const auto code = [&](hn::Vec<DI> low4, auto hi2) {
          return hn::ConvertTo(d, hn::Sub(hn::Or(low4, hn::ShiftLeft<4>(hn::And(hi2, m2))), off));
        };
        const VF q1 = code(hn::And(a, m4), hb);
        const VF q2 = code(hn::And(bq, m4), hn::ShiftRight<2>(hb));
        const VF q3 = code(hn::ShiftRight<4>(a), hn::ShiftRight<4>(hb));
        const VF q4 = code(hn::ShiftRight<4>(bq), hn::ShiftRight<6>(hb));
        const int is = static_cast<int>(l / 16);
        acc = hn::MulAdd(hn::Set(d, dd * sc[is]), hn::Mul(q1, hn::LoadU(d, y + l)), acc);
        acc = hn::MulAdd(hn::Set(d, dd * sc[is + 2]), hn::Mul(q2, hn::LoadU(d, y + 32 + l)), acc);
        acc = hn::MulAdd(hn::Set(d, dd * sc[is + 4]), hn::Mul(q3, hn::LoadU(d, y + 64 + l)), acc);
        acc = hn::MulAdd(hn::Set(d, dd * sc[is + 6]), hn::Mul(q4, hn::LoadU(d, y + 96 + l)), acc);
      }
    }
  }
  return sum(d, acc);
}

// One signature for every row type (n = values in the row), for dot_row_kernel().
float RowF32(const void* w, const float* x, int64_t n) {
  return DotF32(static_cast<const float*>(w), x, n);
}
float RowF16(const void* w, const float* x, int64_t n) { return DotF16(w, x, n); }
float RowBF16(const void* w, const float* x, int64_t n) { return DotBF16(w, x, n); }
float RowQ8_0(const void* w, const float* x, int64_t n) { return DotQ8_0(w, x, n / 32); }
float RowQ4_0(const void* w, const float* x, int64_t n) { return DotQ4_0(w, x, n / 32); }
float RowQ4_K(const void* w, const float* x, int64_t n) { return DotQ4_K(w, x, n / 256); }
float RowQ6_K(const void* w, const float* x, int64_t n) { return DotQ6_K(w, x, n / 256); }

#undef EDGELLM_HW_F16

}  // namespace HWY_NAMESPACE
}  // namespace edgellm::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace edgellm::simd {

HWY_EXPORT(DotF32);
HWY_EXPORT(Dot4F32);
HWY_EXPORT(DotF16);
HWY_EXPORT(DotBF16);
HWY_EXPORT(DotQ8_0);
HWY_EXPORT(DotQ4_0);
HWY_EXPORT(DotQ4_K);
HWY_EXPORT(DotQ6_K);
HWY_EXPORT(RowF32);
HWY_EXPORT(RowF16);
HWY_EXPORT(RowBF16);
HWY_EXPORT(RowQ8_0);
HWY_EXPORT(RowQ4_0);
HWY_EXPORT(RowQ4_K);
HWY_EXPORT(RowQ6_K);

DotRowFn dot_row_kernel(DotKind k) {
  detail::ensure_init();
  switch (k) {
    case DotKind::F32:
      return EDGELLM_CHOSEN(RowF32);
    case DotKind::F16:
      return EDGELLM_CHOSEN(RowF16);
    case DotKind::BF16:
      return EDGELLM_CHOSEN(RowBF16);
    case DotKind::Q8_0:
      return EDGELLM_CHOSEN(RowQ8_0);
    case DotKind::Q4_0:
      return EDGELLM_CHOSEN(RowQ4_0);
    case DotKind::Q4_K:
      return EDGELLM_CHOSEN(RowQ4_K);
    case DotKind::Q6_K:
      return EDGELLM_CHOSEN(RowQ6_K);
  }
  return nullptr;
}

Dot4Fn dot4_f32_kernel() {
  detail::ensure_init();
  return EDGELLM_CHOSEN(Dot4F32);
}

DotF32Fn dot_f32_kernel() {
  detail::ensure_init();
  return EDGELLM_CHOSEN(DotF32);
}

float dot_f32(const float* a, const float* b, int64_t n) {
  detail::ensure_init();
  return HWY_DYNAMIC_DISPATCH(DotF32)(a, b, n);
}
void dot4_f32(const float* r0, const float* r1, const float* r2, const float* r3, const float* x,
              int64_t n, float* out) {
  detail::ensure_init();
  HWY_DYNAMIC_DISPATCH(Dot4F32)(r0, r1, r2, r3, x, n, out);
}
float dot_f16(const void* w, const float* x, int64_t n) {
  detail::ensure_init();
  return HWY_DYNAMIC_DISPATCH(DotF16)(w, x, n);
}
float dot_bf16(const void* w, const float* x, int64_t n) {
  detail::ensure_init();
  return HWY_DYNAMIC_DISPATCH(DotBF16)(w, x, n);
}
float dot_q8_0(const void* w, const float* x, int64_t nb) {
  detail::ensure_init();
  return HWY_DYNAMIC_DISPATCH(DotQ8_0)(w, x, nb);
}
float dot_q4_0(const void* w, const float* x, int64_t nb) {
  detail::ensure_init();
  return HWY_DYNAMIC_DISPATCH(DotQ4_0)(w, x, nb);
}
float dot_q4_k(const void* w, const float* x, int64_t nb) {
  detail::ensure_init();
  return HWY_DYNAMIC_DISPATCH(DotQ4_K)(w, x, nb);
}
float dot_q6_k(const void* w, const float* x, int64_t nb) {
  detail::ensure_init();
  return HWY_DYNAMIC_DISPATCH(DotQ6_K)(w, x, nb);
}

}  // namespace edgellm::simd
#endif  // HWY_ONCE
