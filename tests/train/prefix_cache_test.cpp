// The prefix cache's encodings against independent bounds, computed here from the definitions.
#include "train/prefix_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "util/error.h"

namespace edgellm {
namespace {

std::vector<float> rows(int64_t T, int64_t C, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(T * C));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < C; ++c) x[t * C + c] = n(rng) * static_cast<float>(1 << (t % 5));
  std::fill_n(x.begin() + C, C, 0.f);  // an all-zero row
  return x;
}

TEST(PrefixCache, EncodingsKeepTheirBoundsAndGetEqualsRoundTrip) {
  const int64_t T = 7, C = 37;
  const std::vector<float> x = rows(T, C, 3);
  for (PrefixCacheDType dt :
       {PrefixCacheDType::F32, PrefixCacheDType::BF16, PrefixCacheDType::Int8}) {
    const char* name = prefix_cache_dtype_name(dt);
    EXPECT_EQ(prefix_cache_dtype_from_name(name), dt);
    PrefixCache pc(dt, 1 << 20);
    ASSERT_TRUE(pc.put(42, x.data(), T, C)) << name;
    EXPECT_FALSE(pc.put(42, x.data(), T, C)) << name;  // present already
    const size_t per_row = dt == PrefixCacheDType::F32    ? 4 * C
                           : dt == PrefixCacheDType::BF16 ? 2 * C
                                                          : C + 4;
    EXPECT_EQ(pc.bytes(), T * per_row) << name;
    EXPECT_EQ(prefix_cache_entry_bytes(dt, T, C), T * per_row) << name;
    std::vector<float> got(x.size(), -1.f), rt = x;
    EXPECT_FALSE(pc.get(7, got.data(), T, C)) << name;
    ASSERT_TRUE(pc.get(42, got.data(), T, C)) << name;
    pc.round_trip(rt.data(), T, C);
    EXPECT_EQ(got, rt) << name;  // a hit gives exactly what a miss trains on
    for (int64_t t = 0; t < T; ++t) {
      double amax = 0;
      for (int64_t c = 0; c < C; ++c) amax = std::max(amax, std::fabs(double(x[t * C + c])));
      for (int64_t c = 0; c < C; ++c) {
        const double v = x[t * C + c], e = std::fabs(got[t * C + c] - v);
        // f32 exact; bf16: 8 significant bits, round to nearest: |e| <= 2^-8 |v|; int8: half a
        // step of the row's scale amax/127.
        const double bound = dt == PrefixCacheDType::F32    ? 0.0
                             : dt == PrefixCacheDType::BF16 ? std::fabs(v) * std::ldexp(1.0, -8)
                                                            : amax / 127 / 2 * (1 + 1e-6);
        EXPECT_LE(e, bound) << name << " " << t << "," << c;
      }
    }
  }
  EXPECT_THROW(prefix_cache_dtype_from_name("fp8"), Error);
}

TEST(PrefixCache, KeepsFirstComersUnderTheCapAndChecksTheShape) {
  const int64_t T = 4, C = 16;
  const std::vector<float> x = rows(T, C, 5);
  PrefixCache pc(PrefixCacheDType::Int8,
                 2 * prefix_cache_entry_bytes(PrefixCacheDType::Int8, T, C));
  EXPECT_TRUE(pc.put(1, x.data(), T, C));
  EXPECT_TRUE(pc.put(2, x.data(), T, C));
  EXPECT_FALSE(pc.put(3, x.data(), T, C));  // full: first come, first kept
  EXPECT_EQ(pc.entries(), 2);
  std::vector<float> out(static_cast<size_t>(T * C));
  EXPECT_FALSE(pc.get(3, out.data(), T, C));
  EXPECT_THROW(pc.get(1, out.data(), T - 1, C), Error);
}

}  // namespace
}  // namespace edgellm
