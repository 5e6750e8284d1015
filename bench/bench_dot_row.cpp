// Decode-GEMV inner loop per storage type: the fast dot_row vs its scalar reference
// dot_row_ref, side by side in one run (1024 rows × 4096 values, single thread, best of 5).
// Figures are recorded in docs/formats.md.   bench_dot_row
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "tensor/dtype.h"

using namespace edgellm;

int main() {
  const int64_t n = 4096, rows = 1024;
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> w(n * rows), x(n);
  for (auto& v : w) v = nd(rng);
  for (auto& v : x) v = nd(rng);
  for (DType t :
       {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    const size_t rb = dtype_row_bytes(t, n);
    std::vector<uint8_t> m(rb * rows);
    for (int64_t r = 0; r < rows; ++r) encode_row(t, &w[r * n], m.data() + r * rb, n);
    auto time = [&](auto fn) {
      volatile float sink = 0;
      double best = 1e30;
      for (int rep = 0; rep < 5; ++rep) {
        auto t0 = std::chrono::steady_clock::now();
        for (int64_t r = 0; r < rows; ++r) sink = sink + fn(t, m.data() + r * rb, x.data(), n);
        best = std::min(
            best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      return best;
    };
    const double fast = time(dot_row), ref = time(dot_row_ref);
    std::printf("%-5s fast %.3f ms (%.1f GB/s, %.2f Gval/s)  ref %.3f ms  speedup %.1fx\n",
                dtype_name(t), fast * 1e3, rb * rows / fast / 1e9, n * rows / fast / 1e9, ref * 1e3,
                ref / fast);
  }
}
