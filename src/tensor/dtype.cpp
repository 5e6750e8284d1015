// DType names, sizes, scalar fp16/bf16 conversion, and the decode/encode adapters of every
// storage type. Block layouts are GGUF's (see dtype.h); the quantizers are documented inline and
// in docs/formats.md. dot_row lives in dot_row.cpp (SIMD).
#include "tensor/dtype.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstring>

#include "simd/half.h"
#include "simd/simd.h"
#include "tensor/quant_blocks.h"
#include "util/error.h"

namespace edgellm {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "f32";
    case DType::F16:
      return "f16";
    case DType::BF16:
      return "bf16";
    case DType::Q8_0:
      return "q8_0";
    case DType::Q4_0:
      return "q4_0";
    case DType::Q4_K:
      return "q4_k";
    case DType::Q6_K:
      return "q6_k";
    case DType::I32:
      return "i32";
    case DType::U8:
      return "u8";
    case DType::Packed:
      return "packed";
  }
  return "?";
}

DType dtype_from_name(const std::string& name, const std::string& what) {
  std::string s = name;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K,
                  DType::Q6_K, DType::I32, DType::U8})
    if (s == dtype_name(t)) return t;
  fail("[dtype] {}: unknown dtype '{}' (known: f32, f16, bf16, q8_0, q4_0, q4_k, q6_k, i32, u8)",
       what, name);
}

int64_t dtype_block_size(DType t) {
  switch (t) {
    case DType::Q8_0:
    case DType::Q4_0:
      return kQK32;
    case DType::Q4_K:
    case DType::Q6_K:
      return kQKK;
    default:
      return 1;
  }
}

int64_t dtype_block_bytes(DType t) {
  switch (t) {
    case DType::F32:
      return 4;
    case DType::F16:
      return 2;
    case DType::BF16:
      return 2;
    case DType::Q8_0:
      return sizeof(BlockQ8_0);
    case DType::Q4_0:
      return sizeof(BlockQ4_0);
    case DType::Q4_K:
      return sizeof(BlockQ4_K);
    case DType::Q6_K:
      return sizeof(BlockQ6_K);
    case DType::I32:
      return 4;
    case DType::U8:
      return 1;
    case DType::Packed:
      fail("[dtype] a packed weight has no fixed row size (its parts are in Tensor::packed)");
  }
  return 0;
}

size_t dtype_row_bytes(DType t, int64_t n) {
  const int64_t bs = dtype_block_size(t);
  if (n < 0 || n % bs != 0)
    fail("[dtype] row of {} values is not a multiple of the {} block size {}", n, dtype_name(t),
         bs);
  return static_cast<size_t>(n / bs) * static_cast<size_t>(dtype_block_bytes(t));
}

bool dtype_is_quantized(DType t) { return t == DType::Packed || dtype_block_size(t) > 1; }

// ---- fp16 / bf16 ------------------------------------------------------------------------------

// The scalar conversions live in simd/half.h, shared with the SIMD kernels' tails and targets
// without hardware conversion.
float f16_to_f32(uint16_t h) { return simd::half_to_float(h); }
uint16_t f32_to_f16(float f) { return simd::float_to_half(f); }
uint16_t f32_to_bf16(float f) { return simd::float_to_bfloat(f); }

// ---- decode -----------------------------------------------------------------------------------

namespace {

void decode_q8_0(const BlockQ8_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = f16_to_f32(b[i].d);
    for (int j = 0; j < kQK32; ++j) y[i * kQK32 + j] = d * static_cast<float>(b[i].qs[j]);
  }
}

void decode_q4_0(const BlockQ4_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = f16_to_f32(b[i].d);
    for (int j = 0; j < kQK32 / 2; ++j) {
      y[i * kQK32 + j] = d * static_cast<float>((b[i].qs[j] & 0xf) - 8);
      y[i * kQK32 + j + 16] = d * static_cast<float>((b[i].qs[j] >> 4) - 8);
    }
  }
}

void decode_q4_k(const BlockQ4_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = f16_to_f32(b[i].d), dmin = f16_to_f32(b[i].dmin);
    float* out = y + i * kQKK;
    for (int j = 0; j < 4; ++j) {  // 64 values per step: sub-blocks 2j (low nibbles), 2j+1 (high)
      uint8_t sc0, m0, sc1, m1;
      q4k_scale_min(2 * j, b[i].scales, &sc0, &m0);
      q4k_scale_min(2 * j + 1, b[i].scales, &sc1, &m1);
      const float d0 = d * sc0, c0 = dmin * m0, d1 = d * sc1, c1 = dmin * m1;
      const uint8_t* q = b[i].qs + 32 * j;
      for (int l = 0; l < 32; ++l) {
        out[64 * j + l] = d0 * static_cast<float>(q[l] & 0xf) - c0;
        out[64 * j + 32 + l] = d1 * static_cast<float>(q[l] >> 4) - c1;
      }
    }
  }
}

void decode_q6_k(const BlockQ6_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = f16_to_f32(b[i].d);
    for (int k = 0; k < kQKK; ++k) {
      const int q = q6k_get(b[i], k);
      y[i * kQKK + k] = d * static_cast<float>(b[i].scales[k / 16]) * static_cast<float>(q - 32);
    }
  }
}

}  // namespace

namespace {

// First element of n (each `stride` bytes apart, starting at byte `first`) whose `bits`-wide
// little-endian value has every bit of `mask` set (an all-ones exponent: NaN or Inf).
template <typename U>
int64_t first_all_ones(const uint8_t* p, int64_t n, size_t stride, size_t first, U mask) {
  constexpr int64_t kChunk = 4096;
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const int64_t c1 = std::min(n, c0 + kChunk);
    bool any = false;  // branch-free inner loop, vectorised for the contiguous case
    for (int64_t i = c0; i < c1; ++i) {
      U u;
      std::memcpy(&u, p + first + static_cast<size_t>(i) * stride, sizeof(U));
      any |= (u & mask) == mask;
    }
    if (!any) continue;
    for (int64_t i = c0; i < c1; ++i) {
      U u;
      std::memcpy(&u, p + first + static_cast<size_t>(i) * stride, sizeof(U));
      if ((u & mask) == mask) return i;
    }
  }
  return -1;
}

}  // namespace

int64_t first_nonfinite(DType t, const void* data, int64_t n) {
  // Raw bytes hold no floats; a packed tensor's fp16 scales are checked through its parts.
  if (t == DType::U8) return -1;
  EDGELLM_CHECK(t != DType::Packed, "first_nonfinite: check a packed tensor's scales instead");
  const auto* p = static_cast<const uint8_t*>(data);
  const int64_t bs = dtype_block_size(t);
  EDGELLM_CHECK(n % bs == 0, "first_nonfinite: {} values of {}", n, dtype_name(t));
  const int64_t nb = n / bs;
  const size_t bb = static_cast<size_t>(dtype_block_bytes(t));
  constexpr uint16_t kF16Exp = 0x7c00;
  int64_t i = -1;
  switch (t) {
    case DType::F32:
      return first_all_ones<uint32_t>(p, n, 4, 0, 0x7f800000u);
    case DType::F16:
      return first_all_ones<uint16_t>(p, n, 2, 0, kF16Exp);
    case DType::BF16:
      return first_all_ones<uint16_t>(p, n, 2, 0, 0x7f80);
    case DType::I32:
    case DType::U8:
    case DType::Packed:
      return -1;
    case DType::Q8_0:
    case DType::Q4_0:
      i = first_all_ones<uint16_t>(p, nb, bb, 0, kF16Exp);  // d
      break;
    case DType::Q4_K: {
      const int64_t d = first_all_ones<uint16_t>(p, nb, bb, 0, kF16Exp);
      const int64_t dmin = first_all_ones<uint16_t>(p, nb, bb, 2, kF16Exp);
      i = d < 0 ? dmin : dmin < 0 ? d : std::min(d, dmin);
      break;
    }
    case DType::Q6_K:
      i = first_all_ones<uint16_t>(p, nb, bb, offsetof(BlockQ6_K, d), kF16Exp);
      break;
  }
  return i < 0 ? -1 : i * bs;
}

void decode_row(DType t, const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  const int64_t nb = n / dtype_block_size(t);
  EDGELLM_CHECK(nb * dtype_block_size(t) == n, "decode_row: {} values of {}", n, dtype_name(t));
  switch (t) {
    case DType::F32:
      std::memcpy(dst, p, static_cast<size_t>(n) * 4);
      return;
    case DType::F16:
      simd::f16_to_f32_n(p, dst, n);
      return;
    case DType::BF16:
      simd::bf16_to_f32_n(p, dst, n);
      return;
    case DType::I32:
      for (int64_t i = 0; i < n; ++i) {
        int32_t v;
        std::memcpy(&v, p + 4 * i, 4);
        dst[i] = static_cast<float>(v);
      }
      return;
    case DType::U8:
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(p[i]);
      return;
    case DType::Packed:
      fail("[dtype] decode_row: packed weights are decoded by packed_decode_row");
    // The block structs have alignment 1 or 2; mmapped GGUF data is 32-byte aligned, but copies
    // may not be, so the quantized decoders go through memcpy'd blocks when misaligned.
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_K:
    case DType::Q6_K: {
      const size_t bb = static_cast<size_t>(dtype_block_bytes(t));
      alignas(8) uint8_t tmp[sizeof(BlockQ6_K) + 8];
      const bool aligned = reinterpret_cast<uintptr_t>(p) % 2 == 0;
      for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* blk = p + static_cast<size_t>(i) * bb;
        if (!aligned) {
          std::memcpy(tmp, blk, bb);
          blk = tmp;
        }
        const int64_t bs = dtype_block_size(t);
        float* y = dst + i * bs;
        switch (t) {
          case DType::Q8_0:
            decode_q8_0(reinterpret_cast<const BlockQ8_0*>(blk), y, 1);
            break;
          case DType::Q4_0:
            decode_q4_0(reinterpret_cast<const BlockQ4_0*>(blk), y, 1);
            break;
          case DType::Q4_K:
            decode_q4_k(reinterpret_cast<const BlockQ4_K*>(blk), y, 1);
            break;
          default:
            decode_q6_k(reinterpret_cast<const BlockQ6_K*>(blk), y, 1);
            break;
        }
      }
      return;
    }
  }
}

// ---- encode -----------------------------------------------------------------------------------

namespace {

// GGUF's reference Q8_0: d = max|x| / 127, q = round-half-away(x / d).
void encode_q8_0(const float* x, BlockQ8_0* b) {
  float amax = 0.f;
  for (int j = 0; j < kQK32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.f;
  const float id = d != 0.f ? 1.f / d : 0.f;
  b->d = f32_to_f16(d);
  for (int j = 0; j < kQK32; ++j) b->qs[j] = static_cast<int8_t>(std::round(x[j] * id));
}

// GGUF's reference Q4_0: the value of largest magnitude (with its sign) maps to -8, so the full
// [-8, 7] range is used asymmetrically; q = min(15, trunc(x/d + 8.5)).
void encode_q4_0(const float* x, BlockQ4_0* b) {
  float amax = 0.f, vmax = 0.f;
  for (int j = 0; j < kQK32; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      vmax = x[j];
    }
  }
  const float d = vmax / -8.f;
  const float id = d != 0.f ? 1.f / d : 0.f;
  b->d = f32_to_f16(d);
  for (int j = 0; j < kQK32 / 2; ++j) {
    const int q0 = std::min(15, static_cast<int>(x[j] * id + 8.5f));
    const int q1 = std::min(15, static_cast<int>(x[j + 16] * id + 8.5f));
    b->qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
  }
}

inline int q4k_code(float x, float ds, float dm) {
  return ds > 0.f ? static_cast<int>(std::clamp(std::nearbyint((x + dm) / ds), 0.f, 15.f)) : 0;
}

// Squared error of one 32-value sub-block coded with step ds and offset dm (x ~ ds*q - dm).
float q4k_sub_error(const float* x, float ds, float dm) {
  float e = 0.f;
  for (int l = 0; l < 32; ++l) {
    const float r = x[l] - (ds * static_cast<float>(q4k_code(x[l], ds, dm)) - dm);
    e += r * r;
  }
  return e;
}

// Our Q4_K quantizer (round-to-nearest with a small search; not llama.cpp's iterative fit):
//  1. each 32-value sub-block takes the affine range [lo, hi], lo = min(0, min x) (the format
//     subtracts a non-negative min), shrunk towards its centre by the best of a few clipping
//     factors (squared error), giving step (hi - lo)/15 and min -lo;
//  2. the 8 steps and 8 mins are coded in 6 bits against d = max step/63 and dmin = max min/63
//     (after f16 rounding of d and dmin); each rounded (step, min) pair is refined over its 3x3
//     neighbourhood by squared error, since 6-bit rounding is coarse (up to 1/126 relative);
//  3. the 4-bit codes are rounded against the stored step and min.
void encode_q4_k(const float* x, BlockQ4_K* b) {
  static constexpr float kClip[] = {1.f, 0.95f, 0.9f, 0.85f, 0.8f};
  float step[8], mn[8];
  float max_step = 0.f, max_min = 0.f;
  for (int s = 0; s < 8; ++s) {
    const float* xs = x + 32 * s;
    float lo = 0.f, hi = -INFINITY;
    for (int l = 0; l < 32; ++l) {
      lo = std::min(lo, xs[l]);
      hi = std::max(hi, xs[l]);
    }
    hi = std::max(hi, lo);
    float best = INFINITY;
    step[s] = 0.f;
    mn[s] = -lo;
    for (float c : kClip) {
      const float mid = 0.5f * (hi + lo), h = 0.5f * (hi - lo) * c;
      const float clo = std::min(0.f, mid - h), st = (mid + h - clo) / 15.f;
      const float e = q4k_sub_error(xs, st, -clo);
      if (e < best) best = e, step[s] = st, mn[s] = -clo;
    }
    max_step = std::max(max_step, step[s]);
    max_min = std::max(max_min, mn[s]);
  }
  b->d = f32_to_f16(max_step / 63.f);
  b->dmin = f32_to_f16(max_min / 63.f);
  const float d = f16_to_f32(b->d), dmin = f16_to_f32(b->dmin);
  uint8_t sc[8], m[8];
  for (int s = 0; s < 8; ++s) {
    const int sc0 =
        d > 0.f ? static_cast<int>(std::clamp(std::nearbyint(step[s] / d), 0.f, 63.f)) : 0;
    const int m0 =
        dmin > 0.f ? static_cast<int>(std::clamp(std::nearbyint(mn[s] / dmin), 0.f, 63.f)) : 0;
    float best = INFINITY;
    sc[s] = static_cast<uint8_t>(sc0);
    m[s] = static_cast<uint8_t>(m0);
    for (int cs = std::max(0, sc0 - 1); cs <= std::min(63, sc0 + 1); ++cs)
      for (int cm = std::max(0, m0 - 1); cm <= std::min(63, m0 + 1); ++cm) {
        const float e = q4k_sub_error(x + 32 * s, d * cs, dmin * cm);
        if (e < best) best = e, sc[s] = static_cast<uint8_t>(cs), m[s] = static_cast<uint8_t>(cm);
      }
  }
  q4k_pack_scales(sc, m, b->scales);
  for (int s = 0; s < 8; ++s) {
    const float ds = d * sc[s], dm = dmin * m[s];
    for (int l = 0; l < 32; ++l) {
      const int q = q4k_code(x[32 * s + l], ds, dm);
      const int k = 32 * s + l;  // sub-block s: s even -> low nibbles of qs[32*(s/2) + l]
      uint8_t& byte = b->qs[32 * (k / 64) + (k % 32)];
      if (s % 2 == 0)
        byte = static_cast<uint8_t>((byte & 0xf0) | q);
      else
        byte = static_cast<uint8_t>((byte & 0x0f) | (q << 4));
    }
  }
}

inline int q6k_code(float x, float ds) {
  return ds != 0.f ? static_cast<int>(std::clamp(std::nearbyint(x / ds), -32.f, 31.f)) : 0;
}

float q6k_group_error(const float* x, float ds) {
  float e = 0.f;
  for (int l = 0; l < 16; ++l) {
    const float r = x[l] - ds * static_cast<float>(q6k_code(x[l], ds));
    e += r * r;
  }
  return e;
}

// Our Q6_K quantizer (round-to-nearest with a small search):
//  1. each 16-value group's scale is its signed extreme / -32 (the value of largest magnitude
//     lands on -32, using the asymmetric [-32, 31] range as Q4_0 does), times the best of a few
//     clipping factors by squared error;
//  2. the 16 group scales are coded as int8 against d = max|scale|/127 (after f16 rounding) and
//     each is refined over its neighbours (+-1) by squared error;
//  3. codes are rounded against the stored group scale d*sc.
void encode_q6_k(const float* x, BlockQ6_K* b) {
  static constexpr float kClip[] = {1.f, 0.97f, 0.94f, 0.91f};
  float gs[16];
  float max_abs = 0.f;
  for (int g = 0; g < 16; ++g) {
    const float* xg = x + 16 * g;
    float amax = 0.f, vmax = 0.f;
    for (int l = 0; l < 16; ++l) {
      if (std::fabs(xg[l]) > amax) {
        amax = std::fabs(xg[l]);
        vmax = xg[l];
      }
    }
    float best = INFINITY;
    gs[g] = 0.f;
    for (float c : kClip) {
      const float e = q6k_group_error(xg, vmax * c / -32.f);
      if (e < best) best = e, gs[g] = vmax * c / -32.f;
    }
    max_abs = std::max(max_abs, std::fabs(gs[g]));
  }
  b->d = f32_to_f16(max_abs / 127.f);
  const float d = f16_to_f32(b->d);
  std::memset(b->ql, 0, sizeof(b->ql));
  std::memset(b->qh, 0, sizeof(b->qh));
  for (int g = 0; g < 16; ++g) {
    const float* xg = x + 16 * g;
    const int sc0 =
        d > 0.f ? static_cast<int>(std::clamp(std::nearbyint(gs[g] / d), -128.f, 127.f)) : 0;
    int sc = sc0;
    float best = INFINITY;
    for (int c = std::max(-128, sc0 - 1); c <= std::min(127, sc0 + 1); ++c) {
      const float e = q6k_group_error(xg, d * static_cast<float>(c));
      if (e < best) best = e, sc = c;
    }
    b->scales[g] = static_cast<int8_t>(sc);
    const float ds = d * static_cast<float>(sc);
    for (int l = 0; l < 16; ++l) q6k_set(*b, 16 * g + l, q6k_code(xg[l], ds) + 32);
  }
}

}  // namespace

void encode_row(DType t, const float* src, void* dst, int64_t n) {
  auto* p = static_cast<uint8_t*>(dst);
  const int64_t bs = dtype_block_size(t);
  EDGELLM_CHECK(n % bs == 0, "encode_row: {} values of {}", n, dtype_name(t));
  switch (t) {
    case DType::F32:
      std::memcpy(p, src, static_cast<size_t>(n) * 4);
      return;
    case DType::F16:
      simd::f32_to_f16_n(src, p, n);
      return;
    case DType::BF16:
      simd::f32_to_bf16_n(src, p, n);
      return;
    case DType::I32:
      for (int64_t i = 0; i < n; ++i) {
        const int32_t v = static_cast<int32_t>(std::nearbyint(src[i]));
        std::memcpy(p + 4 * i, &v, 4);
      }
      return;
    case DType::U8:
      for (int64_t i = 0; i < n; ++i)
        p[i] = static_cast<uint8_t>(std::clamp(std::nearbyint(src[i]), 0.f, 255.f));
      return;
    case DType::Packed:
      fail("[dtype] encode_row: a packed weight is produced by compress_linear, not row by row");
    default:
      break;
  }
  // Quantized: build each block in an aligned temporary (dst may be unaligned) and copy it out.
  const size_t bb = static_cast<size_t>(dtype_block_bytes(t));
  for (int64_t i = 0; i < n / bs; ++i) {
    const float* x = src + i * bs;
    uint8_t* out = p + static_cast<size_t>(i) * bb;
    switch (t) {
      case DType::Q8_0: {
        BlockQ8_0 b;
        encode_q8_0(x, &b);
        std::memcpy(out, &b, bb);
        break;
      }
      case DType::Q4_0: {
        BlockQ4_0 b;
        encode_q4_0(x, &b);
        std::memcpy(out, &b, bb);
        break;
      }
      case DType::Q4_K: {
        BlockQ4_K b{};
        encode_q4_k(x, &b);
        std::memcpy(out, &b, bb);
        break;
      }
      default: {
        BlockQ6_K b{};
        encode_q6_k(x, &b);
        std::memcpy(out, &b, bb);
        break;
      }
    }
  }
}

void encode_row_with_scales(DType t, const float* src, const uint16_t* d, void* dst, int64_t n) {
  if (t != DType::Q8_0 && t != DType::Q4_0)
    fail("[dtype] encode_row_with_scales: {} has no single per-block scale", dtype_name(t));
  EDGELLM_CHECK(n % kQK32 == 0, "encode_row_with_scales: {} values of {}", n, dtype_name(t));
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / kQK32; ++i) {
    const float* x = src + i * kQK32;
    const float s = f16_to_f32(d[i]);
    auto code = [&](int j, float lo, float hi) {
      // x/s rather than x*(1/s): exact for x = k*s, which the reciprocal need not be.
      return std::clamp(std::nearbyint(s != 0.f ? x[j] / s : 0.f), lo, hi);
    };
    if (t == DType::Q8_0) {
      BlockQ8_0 b;
      b.d = d[i];
      for (int j = 0; j < kQK32; ++j) b.qs[j] = static_cast<int8_t>(code(j, -127.f, 127.f));
      std::memcpy(p + i * sizeof(b), &b, sizeof(b));
    } else {
      BlockQ4_0 b;
      b.d = d[i];
      for (int j = 0; j < kQK32 / 2; ++j)
        b.qs[j] = static_cast<uint8_t>((int(code(j, -8.f, 7.f)) + 8) |
                                       ((int(code(j + 16, -8.f, 7.f)) + 8) << 4));
      std::memcpy(p + i * sizeof(b), &b, sizeof(b));
    }
  }
}

}  // namespace edgellm
