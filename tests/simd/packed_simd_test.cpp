// The packed-weight SIMD kernels (simd.h "packed weights") against scalar references written
// here from the layout of packed/weight_format.h (codes packed one bit at a time, values in
// double), on every target this machine executes: every width 2..8, sym and asym, group sizes
// whose groups start on a byte (8 .. 128 and the whole row), odd column counts, code rows at odd
// byte addresses and sized exactly (an over-read past the row is an ASan error in the sanitizer
// build), x at a misaligned address.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "simd/simd.h"
#include "simd/target.h"
#include "simd_test_util.h"
#include "tensor/dtype.h"

namespace edgellm {
namespace {

using testing::for_each_target;

// A random dense quantized row and its plain description.
struct Row {
  int bits = 4;
  int64_t cols = 0, group = 0;
  bool asym = false;
  std::vector<uint16_t> code;     // [cols], unpacked
  std::vector<uint16_t> scales;   // fp16 [ng]
  std::vector<uint8_t> zeros;     // [ng], asym
  std::vector<uint8_t> storage;   // 1 + code_bytes: the packed row at an odd address
  std::vector<uint8_t> followed;  // the same, then 16 bytes of another row (0xa5)
  int64_t code_bytes = 0;

  Row(int b, int64_t n, int64_t g, bool a, std::mt19937& rng)
      : bits(b), cols(n), group(g), asym(a) {
    const int64_t ng = (n + g - 1) / g;
    std::uniform_int_distribution<int> codes(0, (1 << b) - 1), zs(0, (1 << b) - 1);
    std::uniform_real_distribution<float> sc(-0.05f, 0.05f);
    for (int64_t c = 0; c < n; ++c) code.push_back(static_cast<uint16_t>(codes(rng)));
    for (int64_t i = 0; i < ng; ++i) {
      scales.push_back(f32_to_f16(sc(rng)));
      if (a) zeros.push_back(static_cast<uint8_t>(zs(rng)));
    }
    code_bytes = (n * b + 7) / 8;
    storage.assign(static_cast<size_t>(1 + code_bytes), 0);
    for (int64_t c = 0; c < n; ++c)  // LSB-first, bit by bit
      for (int i = 0; i < b; ++i) {
        const int64_t bit = c * b + i;
        if ((code[c] >> i) & 1) storage[1 + bit / 8] |= static_cast<uint8_t>(1u << (bit % 8));
      }
    followed = storage;
    followed.resize(storage.size() + 16, 0xa5);
  }
  int off(int64_t g) const { return asym ? zeros[g] : (1 << (bits - 1)) - 1; }
  double value(int64_t c) const {
    const int64_t g = c / group;
    return double(f16_to_f32(scales[g])) * (int(code[c]) - off(g));
  }
  // more = 16: the row is followed by readable bytes of the next one (whole-row loads to its end).
  simd::PackedRowQ view(int more) const {
    simd::PackedRowQ q;
    q.codes = (more ? followed : storage).data() + 1;
    q.readable = code_bytes + more;
    q.scales = scales.data();
    q.zeros = asym ? zeros.data() : nullptr;
    q.cols = cols;
    q.group = group;
    q.bits = bits;
    q.sym_off = (1 << (bits - 1)) - 1;
    return q;
  }
};

std::vector<float> randn(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = nd(rng);
  return v;
}

TEST(SimdPacked, DenseRowDotAndDecodeMatchTheScalarReference) {
  const int64_t kCols[] = {1, 7, 15, 16, 17, 31, 32, 33, 63, 100, 257, 768 + 5};
  int cases = 0;
  for_each_target([&] {
    std::mt19937 rng(7);
    const simd::PackedDotQFn dot = simd::packed_dot_q_kernel();
    const simd::PackedDecodeQFn decode = simd::packed_decode_q_kernel();
    for (int b = 2; b <= 8; ++b)
      for (int64_t cols : kCols)
        for (int64_t group : {int64_t(0), int64_t(8), int64_t(16), int64_t(32), int64_t(40),
                              int64_t(64), int64_t(128)})
          for (bool asym : {false, true}) {
            const int64_t g = group == 0 ? cols : group;
            const Row row(b, cols, g, asym, rng);
            SCOPED_TRACE(::testing::Message() << "b" << b << " cols " << cols << " group " << group
                                              << (asym ? " asym" : " sym"));
            const std::vector<float> x0 = randn(cols, rng);
            std::vector<float> xbuf(static_cast<size_t>(cols) + 1);
            float* x = xbuf.data() + 1;  // 4 bytes past the allocation's alignment
            std::memcpy(x, x0.data(), x0.size() * sizeof(float));
            double ref = 0, mag = 0;
            for (int64_t c = 0; c < cols; ++c) {
              ref += row.value(c) * x[c];
              mag += std::abs(row.value(c) * x[c]);
            }
            const simd::PackedRowQ v = row.view(0);
            ASSERT_NEAR(dot(v, x), ref, 1e-5 * mag + 1e-30);
            ASSERT_NEAR(dot(row.view(16), x), ref, 1e-5 * mag + 1e-30);
            ASSERT_NEAR(simd::packed_dot_q(v, x), ref, 1e-5 * mag + 1e-30);
            // Decoding is one product of exact values (fp16 scale × small integer): exact.
            std::vector<float> dst(static_cast<size_t>(cols) + 2, 12345.f);
            decode(v, dst.data() + 1);
            ASSERT_EQ(dst[0], 12345.f);
            ASSERT_EQ(dst[cols + 1], 12345.f);  // nothing written past the row
            for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(dst[c + 1], float(row.value(c))) << c;
            decode(row.view(16), dst.data() + 1);
            ASSERT_EQ(dst[cols + 1], 12345.f);
            for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(dst[c + 1], float(row.value(c))) << c;
            ++cases;
          }
  });
  EXPECT_GT(cases, 0);
}

TEST(SimdPacked, UnpackedCodeTilesMatchTheScalarReference) {
  for_each_target([&] {
    std::mt19937 rng(11);
    const simd::DotCodesFn dot = simd::dot_codes_kernel();
    const simd::DecodeCodesFn decode = simd::decode_codes_kernel();
    for (int64_t n : {0, 1, 3, 7, 15, 16, 17, 31, 33, 64, 100, 257}) {
      SCOPED_TRACE(::testing::Message() << "n " << n);
      std::uniform_int_distribution<int> cd(0, 255), od(0, 255);
      std::vector<uint16_t> cbuf(static_cast<size_t>(n) + 1);
      uint16_t* code = cbuf.data() + 1;  // 2 bytes past the alignment
      for (int64_t i = 0; i < n; ++i) code[i] = static_cast<uint16_t>(cd(rng));
      const int off = od(rng);
      const std::vector<float> x0 = randn(n, rng);
      std::vector<float> xbuf(static_cast<size_t>(n) + 1);
      float* x = xbuf.data() + 1;
      if (n) std::memcpy(x, x0.data(), x0.size() * sizeof(float));
      double ref = 0, mag = 0;
      for (int64_t i = 0; i < n; ++i) {
        ref += double(int(code[i]) - off) * x[i];
        mag += std::abs(double(int(code[i]) - off) * x[i]);
      }
      ASSERT_NEAR(dot(code, off, x, n), ref, 1e-5 * mag + 1e-30);
      ASSERT_NEAR(simd::dot_codes(code, off, x, n), ref, 1e-5 * mag + 1e-30);
      const float scale = 0.0107421875f;  // fp16-exact: products are exact
      std::vector<float> dst(static_cast<size_t>(n) + 2, 777.f);
      decode(code, off, scale, dst.data() + 1, n);
      ASSERT_EQ(dst[0], 777.f);
      ASSERT_EQ(dst[n + 1], 777.f);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(dst[i + 1], scale * float(int(code[i]) - off)) << i;
    }
  });
}

TEST(SimdPacked, HoistedKernelPointersFollowTheTarget) {
  std::vector<simd::PackedDotQFn> seen;
  for_each_target([&] { seen.push_back(simd::packed_dot_q_kernel()); });
  for (size_t i = 0; i < seen.size(); ++i)
    for (size_t j = i + 1; j < seen.size(); ++j) EXPECT_NE(seen[i], seen[j]) << i << " " << j;
}

}  // namespace
}  // namespace edgellm
