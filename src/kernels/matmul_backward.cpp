// Backward of the linear layer (matmul.h). dx goes through frozen weights of any stored type,
// decoded kDxTileRows rows at a time into an fp32 tile (as the T > 1 forward does), so a quantized
// base is never dequantized whole; dw exists only for trainable fp32 weights.
#include <algorithm>
#include <vector>

#include "kernels/gemm_bf16.h"
#include "kernels/matmul.h"
#include "kernels/packed_matmul.h"
#include "util/error.h"

namespace edgellm {

namespace {
// Rows of W decoded per tile: 64 × K fp32 stays in L2 for K up to ~2k.
constexpr int64_t kDxTileRows = 64;
}  // namespace

GemmWorkspace matmul_backward_workspace(const WeightView& w, int64_t T, bool dw) {
  GemmWorkspace ws;
  if (T > 1 && bf16_math_on(w)) {  // as below: dx = dY·W and, trained, dW = dYᵀ·X
    ws = sgemm_bf16_workspace(false, false, T, w.cols, w.rows, true);
    if (dw) ws.merge(sgemm_bf16_workspace(true, false, w.rows, w.cols, T, true));
    return ws;
  }
  if (w.dtype == DType::Packed) {
    ws.transient = packed_matmul_tile_bytes(w.packed, T);
    return ws;
  }
  if (w.dtype == DType::F32) return ws;
  // As the dx path below: the BF16 GEMM accumulating dY·W, else one decoded tile.
  if (w.dtype == DType::BF16) return gemm_bf16_workspace(T, w.cols, w.rows, false, true);
  ws.transient = static_cast<size_t>(std::min(kDxTileRows, w.rows) * w.cols) * sizeof(float);
  return ws;
}

void matmul_backward(float* dx, float* dw, const float* dy, const float* x, const WeightView& w,
                     int64_t T) {
  if (w.dtype == DType::Packed) {  // a compressed base is frozen: only dx flows through it
    EDGELLM_CHECK(dw == nullptr, "dw requested for a packed weight {}x{}", w.rows, w.cols);
    if (dx) packed_matmul_backward(dx, dy, w.packed, T);
    return;
  }
  EDGELLM_CHECK(w.data != nullptr && w.rows > 0 && w.cols > 0, "empty weight {}x{}", w.rows,
                w.cols);
  const int64_t N = w.rows, K = w.cols;
  if (dw) {
    EDGELLM_CHECK(w.dtype == DType::F32, "dw requested for a {} weight", dtype_name(w.dtype));
    // dw[N, K] += dyᵀ[N, T] · x[T, K]
    if (T > 1 && bf16_math_on(w))
      sgemm_bf16(true, false, N, K, T, dy, x, dw, true);
    else
      sgemm(true, false, N, K, T, 1.f, dy, N, x, K, 1.f, dw, K);
  }
  if (!dx) return;
  if (T > 1 && bf16_math_on(w)) {
    sgemm_bf16(false, false, T, K, N, dy, reinterpret_cast<const float*>(w.data), dx, true);
    return;
  }
  if (w.dtype == DType::F32) {
    // dx[T, K] += dy[T, N] · W[N, K]
    sgemm(false, false, T, K, N, 1.f, dy, N, reinterpret_cast<const float*>(w.data),
          static_cast<int64_t>(w.row_bytes / sizeof(float)), 1.f, dx, K);
    return;
  }
  if (w.dtype == DType::BF16) {  // dx[T, K] += bf16(dy)[T, N] · W[N, K], weights as stored
    gemm_bf16(dy, reinterpret_cast<const uint16_t*>(w.data), dx, T, K, N, /*trans_w=*/false,
              /*accumulate=*/true);
    return;
  }
  // dx += dy[:, r0:r0+nr] · tile[nr, K], summed over row tiles of W.
  std::vector<float> tile(static_cast<size_t>(std::min(kDxTileRows, N) * K));
  for (int64_t r0 = 0; r0 < N; r0 += kDxTileRows) {
    const int64_t nr = std::min(kDxTileRows, N - r0);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < nr; ++r) decode_row(w.dtype, w.row(r0 + r), tile.data() + r * K, K);
    sgemm(false, false, T, K, nr, 1.f, dy + r0, N, tile.data(), K, 1.f, dx, K);
  }
}

}  // namespace edgellm
