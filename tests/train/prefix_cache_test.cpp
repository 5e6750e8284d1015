// The prefix cache's encodings against independent bounds, computed here from the definitions.
#include "train/prefix_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <vector>

#include "test_util.h"
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

// On disk: the same entries, bytes and first-come rule as in memory, read back bit for bit; the
// file is unlinked at once (the directory stays empty); a directory that cannot hold it fails
// naming it.
TEST(PrefixCache, OnDiskHoldsWhatMemoryHoldsAndLeavesNoFile) {
  const int64_t T = 6, C = 20;
  const std::string dir = testing::temp_dir("prefix_cache_disk");
  for (PrefixCacheDType dt :
       {PrefixCacheDType::F32, PrefixCacheDType::BF16, PrefixCacheDType::Int8}) {
    const char* name = prefix_cache_dtype_name(dt);
    const size_t cap = 3 * prefix_cache_entry_bytes(dt, T, C);
    PrefixCache mem(dt, cap), disk(dt, cap, dir);
    EXPECT_TRUE(disk.on_disk());
    EXPECT_FALSE(mem.on_disk());
    EXPECT_TRUE(std::filesystem::is_empty(dir)) << name;
    for (uint64_t k = 0; k < 4; ++k) {
      const std::vector<float> x = rows(T, C, static_cast<uint32_t>(10 + k));
      EXPECT_EQ(mem.put(k, x.data(), T, C), k < 3) << name << " " << k;
      EXPECT_EQ(disk.put(k, x.data(), T, C), k < 3) << name << " " << k;
    }
    EXPECT_EQ(disk.bytes(), mem.bytes()) << name;
    EXPECT_EQ(disk.entries(), 3) << name;
    for (uint64_t k : {2u, 0u, 1u, 3u}) {  // out of order: reads go by offset
      std::vector<float> a(static_cast<size_t>(T * C), -1.f), b = a;
      EXPECT_EQ(mem.get(k, a.data(), T, C), k < 3);
      EXPECT_EQ(disk.get(k, b.data(), T, C), k < 3);
      EXPECT_EQ(a, b) << name << " " << k;
    }
    std::vector<float> out(static_cast<size_t>(T * C));
    EXPECT_THROW(disk.get(1, out.data(), T, C - 1), Error);
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir));
  const std::string err =
      testing::error_of([&] { PrefixCache bad(PrefixCacheDType::F32, 1 << 20, dir + "/missing"); });
  EXPECT_NE(err.find(dir + "/missing"), std::string::npos) << err;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace edgellm
