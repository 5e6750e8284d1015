// Decode-GEMV inner loop per storage type: the fast dot_row vs its scalar reference
// dot_row_ref, side by side in one run (1024 rows × 4096 values, single thread, best of 5); for
// the block-quantized types also the integer GEMV on 8-bit activations (simd qdot): the
// portable int16 kernel and, where the CPU has it, the AVX512-VNNI one. Figures are recorded in
// docs/formats.md and docs/simd.md.   bench_dot_row
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "simd/simd.h"
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
    const simd::QdotFn portable =
        dot_qx_kernel(t) ? simd::qdot_portable_kernel(*dot_kind(t)) : nullptr;
    if (!portable) continue;
    QuantizedActivations qx;
    qx.quantize(x.data(), n);
    const simd::QuantX xv = qx.view();
    auto time_q = [&](simd::QdotFn f) {
      return time([&](DType, const void* row, const float*, int64_t k) { return f(row, xv, k); });
    };
    const double tp = time_q(portable);
    std::printf("      qdot portable %.3f ms (%.1f GB/s)", tp * 1e3, rb * rows / tp / 1e9);
    if (const simd::QdotFn vnni = simd::qdot_vnni_kernel(*dot_kind(t))) {
      const double tv = time_q(vnni);
      std::printf("  vnni %.3f ms (%.1f GB/s, %.2fx portable)", tv * 1e3, rb * rows / tv / 1e9,
                  tp / tv);
    }
    std::printf("\n");
  }
}
