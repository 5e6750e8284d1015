// first_nonfinite (the load-time NaN/Inf scan over stored bits) against decode_row + std::isfinite
// on every storage type: finite data gives -1; a non-finite value, or a non-finite block scale,
// gives the index of the first affected value (the block's first value for block types).
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "tensor/dtype.h"
#include "test_util.h"

namespace edgellm {
namespace {

// Reference: decode everything, first non-finite value, rounded down to its block.
int64_t reference(DType t, const std::vector<uint8_t>& bytes, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  decode_row(t, bytes.data(), v.data(), n);
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i])) return i / dtype_block_size(t) * dtype_block_size(t);
  return -1;
}

TEST(NonFinite, MatchesDecodeOnEveryType) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 1.f);
  const int64_t n = 256 * 40;  // whole blocks of every type; > one 4096-value scan chunk
  std::vector<float> x(n);
  for (float& v : x) v = nd(rng);
  for (DType t :
       {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    std::vector<uint8_t> b(dtype_row_bytes(t, n));
    encode_row(t, x.data(), b.data(), n);
    EXPECT_EQ(first_nonfinite(t, b.data(), n), -1) << dtype_name(t);
    EXPECT_EQ(reference(t, b, n), -1) << dtype_name(t);
    const int64_t bs = dtype_block_size(t);
    const size_t bb = static_cast<size_t>(dtype_block_bytes(t));
    for (int64_t at : {int64_t{0}, int64_t{4999}, n - 1}) {
      for (int kind = 0; kind < 2; ++kind) {  // NaN, then Inf
        std::vector<uint8_t> p = b;
        const int64_t blk = at / bs;
        if (t == DType::F32) {
          const float v = kind ? INFINITY : NAN;
          std::memcpy(&p[static_cast<size_t>(at) * 4], &v, 4);
        } else if (t == DType::F16 || t == DType::BF16) {
          const uint16_t v = t == DType::F16 ? (kind ? 0x7c00 : 0x7e00) : (kind ? 0xff80 : 0x7fc0);
          std::memcpy(&p[static_cast<size_t>(at) * 2], &v, 2);
        } else {
          // The block's f16 scale: d at byte 0 (Q8_0, Q4_0, Q4_K; Q4_K's dmin at 2), d at 208
          // (Q6_K).
          const uint16_t v = kind ? 0xfc00 : 0x7e01;
          const size_t off = t == DType::Q6_K ? 208 : (t == DType::Q4_K && kind ? 2 : 0);
          std::memcpy(&p[static_cast<size_t>(blk) * bb + off], &v, 2);
        }
        const int64_t want = reference(t, p, n);
        EXPECT_EQ(want, blk * bs) << dtype_name(t) << " at " << at;
        EXPECT_EQ(first_nonfinite(t, p.data(), n), want) << dtype_name(t) << " at " << at;
      }
    }
  }
}

}  // namespace
}  // namespace edgellm
