// GGUF block structs (byte layouts identical to ggml's block_q8_0, block_q4_0, block_q4_K,
// block_q6_K) and the bit-packing helpers of the K-quants, shared by the decoders, encoders and
// dot products. Internal to the tensor module and its tests.
#pragma once

#include <cstdint>

namespace edgellm {

inline constexpr int kQK32 = 32;  // Q8_0 / Q4_0 block
inline constexpr int kQKK = 256;  // K-quant super-block

struct BlockQ8_0 {
  uint16_t d;     // f16 scale
  int8_t qs[32];  // x = d * q
};
static_assert(sizeof(BlockQ8_0) == 34);

struct BlockQ4_0 {
  uint16_t d;      // f16 scale
  uint8_t qs[16];  // value j: low nibble of qs[j] (j < 16), high nibble of qs[j-16]; x = d*(q-8)
};
static_assert(sizeof(BlockQ4_0) == 18);

struct BlockQ4_K {
  uint16_t d;          // f16 super-scale of the 6-bit sub-block scales
  uint16_t dmin;       // f16 super-scale of the 6-bit sub-block mins
  uint8_t scales[12];  // 8 (scale, min) pairs of 6 bits, packed (q4k_scale_min)
  uint8_t qs[128];     // 64-value chunk c: sub-block 2c in low nibbles of qs[32c..32c+31],
                       // sub-block 2c+1 in the high nibbles; x = d*sc*q - dmin*m
};
static_assert(sizeof(BlockQ4_K) == 144);

struct BlockQ6_K {
  uint8_t ql[128];    // low 4 bits of the 6-bit codes
  uint8_t qh[64];     // high 2 bits
  int8_t scales[16];  // one per 16 consecutive values
  uint16_t d;         // f16 super-scale; x = d*scale*(q-32)
};
static_assert(sizeof(BlockQ6_K) == 210);

// Q4_K sub-block j's 6-bit scale and min. Sub-blocks 0..3 keep theirs in the low 6 bits of bytes
// j and j+4; sub-blocks 4..7 keep their low 4 bits in byte j+4 (scale low nibble, min high
// nibble) and their top 2 bits in the spare top bits of bytes j-4 (scale) and j (min).
inline void q4k_scale_min(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Inverse of q4k_scale_min for all 8 sub-blocks (sc, m < 64).
inline void q4k_pack_scales(const uint8_t* sc, const uint8_t* m, uint8_t* q) {
  for (int j = 0; j < 4; ++j) {
    q[j] = static_cast<uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    q[j + 4] = static_cast<uint8_t>((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    q[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xf) | ((m[j + 4] & 0xf) << 4));
  }
}

// Q6_K code k (0..255, unsigned 0..63) within a super-block. Each 128-value half h uses
// ql[64h..64h+63] and qh[32h..32h+31]; in a half, position p = 32*g + l (g = 0..3, l < 32) takes
// its low 4 bits from ql[l + 32*(g&1)] (low nibble for g < 2, high nibble for g >= 2) and its high
// 2 bits from bits 2g..2g+1 of qh[l].
inline int q6k_get(const BlockQ6_K& b, int k) {
  const int h = k / 128, p = k % 128, g = p / 32, l = p % 32;
  const uint8_t lo = b.ql[64 * h + l + 32 * (g & 1)];
  const int low = g < 2 ? (lo & 0xf) : (lo >> 4);
  const int high = (b.qh[32 * h + l] >> (2 * g)) & 3;
  return low | (high << 4);
}

// Sets code k (0..63); the destination bits must be zero beforehand.
inline void q6k_set(BlockQ6_K& b, int k, int q) {
  const int h = k / 128, p = k % 128, g = p / 32, l = p % 32;
  uint8_t& lo = b.ql[64 * h + l + 32 * (g & 1)];
  lo = static_cast<uint8_t>(lo | (g < 2 ? (q & 0xf) : ((q & 0xf) << 4)));
  b.qh[32 * h + l] = static_cast<uint8_t>(b.qh[32 * h + l] | (((q >> 4) & 3) << (2 * g)));
}

}  // namespace edgellm
