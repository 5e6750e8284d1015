// LSB-first bit fields in byte streams (weight_format.h layouts). Internal to src/packed.
#pragma once

#include <cstdint>
#include <cstring>

namespace edgellm::bits {

// The b-bit field (b <= 16) starting at bit `pos` of p; reads only the bytes it covers.
inline uint32_t get(const uint8_t* p, uint64_t pos, int b) {
  const uint8_t* q = p + pos / 8;
  const int off = static_cast<int>(pos % 8);
  const int nbytes = (off + b + 7) / 8;
  uint32_t w = 0;
  for (int i = 0; i < nbytes; ++i) w |= static_cast<uint32_t>(q[i]) << (8 * i);
  return (w >> off) & ((1u << b) - 1);
}

// ORs v (< 2^b) into the b-bit field at bit `pos`; the field must be zero beforehand.
inline void put(uint8_t* p, uint64_t pos, int b, uint32_t v) {
  uint8_t* q = p + pos / 8;
  const int off = static_cast<int>(pos % 8);
  const uint32_t w = v << off;
  const int nbytes = (off + b + 7) / 8;
  for (int i = 0; i < nbytes; ++i) q[i] = static_cast<uint8_t>(q[i] | (w >> (8 * i)));
}

// The n (1..8) bytes at p as a little-endian word, read with exact-size loads combined in
// registers: a memcpy of n bytes into a zeroed uint64 on the stack followed by an 8-byte read
// defeats store-to-load forwarding and stalled the packed GEMV on every 8 codes (perf, 134M).
inline uint64_t load_le(const uint8_t* p, int n) {
  uint64_t w = 0;
  int i = 0;
  if (n & 8) {
    std::memcpy(&w, p, 8);
    return w;
  }
  if (n & 4) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    w = v;
    i = 4;
  }
  if (n & 2) {
    uint16_t v;
    std::memcpy(&v, p + i, 2);
    w |= uint64_t(v) << (8 * i);
    i += 2;
  }
  if (n & 1) w |= uint64_t(p[i]) << (8 * i);
  return w;
}

// out[0..n) = the n b-bit codes starting at bit `pos`. Eight b-bit codes fill exactly b bytes, so
// once the position is byte-aligned the codes are read 8 at a time from one little-endian word.
inline void unpack(const uint8_t* p, uint64_t pos, int b, int64_t n, uint16_t* out) {
  int64_t i = 0;
  if (b == 16) {
    for (; i < n; ++i) out[i] = static_cast<uint16_t>(get(p, pos + 16 * uint64_t(i), 16));
    return;
  }
  for (; i < n && (pos + uint64_t(i) * b) % 8 != 0; ++i)
    out[i] = static_cast<uint16_t>(get(p, pos + uint64_t(i) * b, b));
  const uint32_t mask = (1u << b) - 1;
  for (; i + 8 <= n; i += 8) {
    const uint64_t w = load_le(p + (pos + uint64_t(i) * b) / 8, b);  // little-endian host
    for (int k = 0; k < 8; ++k) out[i + k] = static_cast<uint16_t>((w >> (k * b)) & mask);
  }
  for (; i < n; ++i) out[i] = static_cast<uint16_t>(get(p, pos + uint64_t(i) * b, b));
}

}  // namespace edgellm::bits
