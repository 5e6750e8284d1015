// Scalar fp16 / bf16 <-> fp32 conversions (round to nearest even). The one implementation: the
// tensor module's f16_to_f32 / f32_to_f16 / f32_to_bf16 forward here, and the SIMD kernels use
// these for block scales and on targets without a hardware conversion (no F16C).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace edgellm::simd {

inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  uint32_t u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (mant << 13);  // inf / NaN (payload kept)
  } else if (exp != 0) {
    u = sign | ((exp + 112) << 23) | (mant << 13);  // rebias 15 -> 127
  } else if (mant == 0) {
    u = sign;
  } else {
    // Subnormal: mant * 2^-24, exact in f32.
    float f = static_cast<float>(mant) * 0x1p-24f;
    std::memcpy(&u, &f, 4);
    u |= sign;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u)  // inf or NaN; NaN stays a quiet NaN
    return sign | (x > 0x7f800000u ? static_cast<uint16_t>(0x7e00 | ((x >> 13) & 0x3ff)) : 0x7c00);
  if (x >= 0x477ff000u) return sign | 0x7c00;  // >= 65520 rounds (to even) past 65504: inf
  if (x < 0x38800000u) {
    // Below the smallest normal 2^-14: the f16 is round(|f| * 2^24) (scaling by 2^24 is exact and
    // nearbyint rounds to nearest even); 1024 lands exactly on the smallest normal's encoding.
    float a;
    std::memcpy(&a, &x, 4);
    return sign | static_cast<uint16_t>(std::nearbyint(a * 0x1p24f));
  }
  // Normal: round the 23-bit mantissa to 10 bits, to nearest even, then rebias the exponent; a
  // mantissa carry correctly bumps the exponent.
  x += 0xfffu + ((x >> 13) & 1u);
  return sign | static_cast<uint16_t>((x - 0x38000000u) >> 13);
}

inline float bfloat_to_float(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t float_to_bfloat(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

}  // namespace edgellm::simd
