// Per-shape caches stay bounded (issue 11, "bounded caches"). The bf16 GEMM caches one
// JIT-compiled oneDNN primitive per shape, and the row count of a call is its token count: an
// evaluation or a generation over many different sequence lengths meets a new shape at nearly
// every call. Memory must level off, not grow with the number of lengths seen.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "kernels/gemm_bf16.h"
#include "test_util.h"
#include "util/rng.h"

namespace edgellm {
namespace {

// Resident set size in bytes (/proc/self/statm, second field).
int64_t rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return -1;
  long size = 0, resident = 0;
  const int n = std::fscanf(f, "%ld %ld", &size, &resident);
  std::fclose(f);
  return n == 2 ? int64_t(resident) * sysconf(_SC_PAGESIZE) : -1;
}

uint16_t bf16_of(float x) {
  uint16_t h;
  f32_to_bf16_n(&x, &h, 1);
  return h;
}
float f32_of(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(BoundedCaches, Bf16GemmOverManySequenceLengthsLevelsOff) {
  const int64_t N = 96, K = 128, kMaxM = 520;
  Rng rng(3);
  std::vector<uint16_t> w(N * K);
  for (auto& v : w) v = bf16_of(float(rng.normal()));
  std::vector<float> a(kMaxM * K), c(kMaxM * N);
  for (auto& v : a) v = float(rng.normal());
  auto sweep = [&](int64_t m0, int64_t m1) {
    for (int64_t M = m0; M < m1; ++M) {
      gemm_bf16(a.data(), w.data(), c.data(), M, N, K, /*trans_w=*/true, false);
      gemm_bf16(a.data(), w.data(), c.data(), M, N, K, true, true);  // accumulate: a second shape
    }
  };
  sweep(1, 121);  // warm: the cache fills, allocators reach their working set
  const int64_t r1 = rss_bytes();
  sweep(121, kMaxM);  // 800 new shapes
  const int64_t r2 = rss_bytes();
  ASSERT_GT(r1, 0);
  std::printf("RSS after 240 shapes %.1f MB, after 800 more %.1f MB; %zu primitives cached\n",
              r1 / 1048576.0, r2 / 1048576.0, bf16_gemm_cached_shapes());
  EXPECT_LE(bf16_gemm_cached_shapes(), bf16_gemm_max_cached_shapes());
  // Unbounded, the 800 new primitives kept ~60 MB more (docs/reliability.md); bounded, the
  // evicted ones are freed. The activations here are < 0.3 MB.
  if (!testing::kUnderAsan) {
    EXPECT_LT(r2 - r1, int64_t(6) << 20) << "RSS grew from " << r1 << " to " << r2 << " bytes";
  }
  // A shape evicted long ago is rebuilt and still right: row 0 of M = 3 against the reference on
  // the bf16-rounded operands.
  gemm_bf16(a.data(), w.data(), c.data(), 3, N, K, true, false);
  for (int64_t n = 0; n < N; ++n) {
    double ref = 0;
    for (int64_t k = 0; k < K; ++k) ref += double(f32_of(bf16_of(a[k]))) * f32_of(w[n * K + k]);
    ASSERT_NEAR(c[n], ref, 1e-3 * (1 + std::abs(ref))) << "column " << n;
  }
}

}  // namespace
}  // namespace edgellm
