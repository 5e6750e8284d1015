// Kernel throughput on this machine: GEMM (prefill shapes) in GFLOP/s and GEMV (decode) in GB/s
// of weights streamed, per storage type, measured side by side in one run. JSON on stdout.
//   bench_kernels [threads]
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "kernels/matmul.h"
#include "util/rng.h"

using namespace edgellm;

namespace {

template <typename F>
double best_seconds(int reps, F&& f) {
  f();  // warm-up
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  omp_set_num_threads(threads);
  Rng rng(1);
  std::printf("{\"threads\": %d, \"results\": [\n", threads);
  bool first = true;
  struct Case {
    int64_t T, N, K;
  };
  // Prefill GEMMs of the 134M shape (T=512) and decode GEMVs (T=1) of the 134M / TinyLlama shapes.
  const Case cases[] = {{512, 2048, 768}, {512, 768, 2048}, {512, 32000, 768}, {1, 2048, 768},
                        {1, 32000, 768},  {1, 5632, 2048},  {1, 2048, 5632}};
  for (DType t :
       {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    for (const Case& c : cases) {
      if (c.K % dtype_block_size(t) != 0) continue;
      std::vector<float> wf(c.N * c.K), x(c.T * c.K), y(c.T * c.N);
      for (auto& v : wf) v = static_cast<float>(rng.normal() * 0.02);
      for (auto& v : x) v = static_cast<float>(rng.normal());
      const size_t rb = dtype_row_bytes(t, c.K);
      std::vector<uint8_t> packed(rb * c.N);
      for (int64_t r = 0; r < c.N; ++r)
        encode_row(t, wf.data() + r * c.K, packed.data() + r * rb, c.K);
      WeightView w{t, packed.data(), c.N, c.K, rb, {}};
      const int reps = c.T == 1 ? 20 : 5;
      double s = best_seconds(reps, [&] { matmul(x.data(), w, y.data(), c.T); });
      const double gflops = 2.0 * c.T * c.N * c.K / s / 1e9, gbs = double(rb * c.N) / s / 1e9;
      std::printf(
          "%s  {\"dtype\": \"%s\", \"T\": %ld, \"N\": %ld, \"K\": %ld, \"ms\": %.3f, "
          "\"gflops\": %.1f, \"weight_gb_per_s\": %.1f}",
          first ? "" : ",\n", dtype_name(t), long(c.T), long(c.N), long(c.K), s * 1e3, gflops, gbs);
      first = false;
    }
  }
  std::printf("\n]}\n");
}
