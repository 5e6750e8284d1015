// The packed GEMM and its backward: rows of W decoded by packed_decode_row into an fp32 tile that
// goes through the fp32 sgemm, so W is never dequantized whole.
#include "kernels/packed_matmul.h"

#include <algorithm>
#include <vector>

#include "kernels/gemm_bf16.h"
#include "kernels/matmul.h"
#include "kernels/threads.h"
#include "packed/packed_kernels.h"
#include "tensor/dtype.h"
#include "util/error.h"

namespace edgellm {

namespace {
// Rows decoded per GEMM tile: 64 rows × K fp32 stays in L2 for K up to ~2k (as kernels/matmul).
constexpr int64_t kPackedTileRows = 64;
// Below this many weights a tile is decoded on one thread: waking the pool costs more than it
// saves.
constexpr int64_t kPackedParallelMinWeights = 1 << 16;
}  // namespace

void packed_matmul(const float* x, const PackedView& w, float* y, int64_t T, bool accumulate) {
  EDGELLM_CHECK(w.rows > 0 && w.cols > 0 && w.codes != nullptr, "empty packed weight {}x{}", w.rows,
                w.cols);
  if (T == 1) {
    const bool par = w.rows * w.cols >= kPackedParallelMinWeights;
    // x quantized once, every row an integer dot, where this CPU has the kernel for the layout
    // (and x is finite: a NaN/Inf keeps the fp32 path, as kernels/matmul does).
    thread_local QuantizedActivations qx;
    if (const PackedQxKernels k = packed_gemv_qx_kernels(w); k && qx.quantize(x, w.cols)) {
      const simd::QuantX xv = qx.view();
      parallel_ranges_if(par, w.rows, [&](int64_t r0, int64_t r1) {
        packed_gemv_qx(w, k, xv, y, accumulate, r0, r1);
      });
      return;
    }
    parallel_ranges_if(par, w.rows,
                       [&](int64_t r0, int64_t r1) { packed_gemv(w, x, y, accumulate, r0, r1); });
    return;
  }
  const int64_t N = w.rows, K = w.cols;
  auto decode = [&](int64_t r0, int64_t nr, float* tile) {
#pragma omp parallel for schedule(static) if (nr * K >= kPackedParallelMinWeights)
    for (int64_t r = 0; r < nr; ++r) packed_decode_row(w, r0 + r, tile + r * K);
  };
  gemm_decoded(x, T, N, K, decode, y, accumulate, kPackedTileRows);
}

size_t packed_matmul_tile_bytes(const PackedView& w, int64_t T) {
  // The backward always tiles; the forward only for T > 1 (a training step's T is > 1 anyway).
  (void)T;
  return static_cast<size_t>(std::min(kPackedTileRows, w.rows) * w.cols) * sizeof(float);
}

void packed_matmul_backward(float* dx, const float* dy, const PackedView& w, int64_t T) {
  const int64_t N = w.rows, K = w.cols;
  std::vector<float> tile(static_cast<size_t>(std::min(kPackedTileRows, N) * K));
  for (int64_t r0 = 0; r0 < N; r0 += kPackedTileRows) {
    const int64_t nr = std::min(kPackedTileRows, N - r0);
#pragma omp parallel for schedule(static) if (nr * K >= kPackedParallelMinWeights)
    for (int64_t r = 0; r < nr; ++r) packed_decode_row(w, r0 + r, tile.data() + r * K);
    // dx[T, K] += dy[T, r0:r0+nr] · tile[nr, K]
    sgemm(false, false, T, K, nr, 1.f, dy + r0, N, tile.data(), K, 1.f, dx, K);
  }
}

}  // namespace edgellm
