// The machine's practical GEMM ceilings: the best rate of one large square GEMM through the
// kernels edgellm itself uses, fp32 (oneDNN sgemm, kernels/matmul.h) and bf16 (oneDNN matmul on
// AVX512_BF16, kernels/gemm_bf16.h: bf16 operands, fp32 accumulation). Training throughput is
// quoted against these (bench/pretrain_bench.sh). One JSON object on stdout.
//   bench_gemm_ceiling [n=2048] [reps=5]      threads: OMP_NUM_THREADS
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "kernels/gemm_bf16.h"
#include "kernels/matmul.h"
#include "util/rng.h"

using namespace edgellm;

namespace {

// Best of `reps` timed calls after one untimed call (first-touch, JIT and cache warm-up).
template <typename F>
double best_seconds(int reps, F&& f) {
  f();
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t n = argc > 1 ? std::atoll(argv[1]) : 2048;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 5;
  if (n <= 0 || reps <= 0) {
    std::fprintf(stderr, "usage: bench_gemm_ceiling [n>0] [reps>0]\n");
    return 2;
  }
  Rng rng(1);
  std::vector<float> a(n * n), b(n * n), c(n * n);
  for (auto& v : a) v = static_cast<float>(rng.normal());
  for (auto& v : b) v = static_cast<float>(rng.normal());
  std::vector<uint16_t> b16(n * n);
  f32_to_bf16_n(b.data(), b16.data(), n * n);
  const double flop = 2.0 * double(n) * double(n) * double(n);
  // C = A·Bᵀ in both: the linear layer's forward form, the one both kernels are tuned for.
  const double s32 = best_seconds(
      reps, [&] { sgemm(false, true, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n); });
  const double s16 =
      best_seconds(reps, [&] { gemm_bf16(a.data(), b16.data(), c.data(), n, n, n, true, false); });
  std::printf(
      "{\"threads\": %d, \"n\": %ld, \"fp32_gflops\": %.1f, \"bf16_gflops\": %.1f, "
      "\"fp32_ms\": %.2f, \"bf16_ms\": %.2f}\n",
      omp_get_max_threads(), long(n), flop / s32 / 1e9, flop / s16 / 1e9, s32 * 1e3, s16 * 1e3);
}
