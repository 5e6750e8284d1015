// GEMMs over packed weights (packed/weight_format.h), W[N, K] with one output channel per row:
//   packed_matmul          Y[T, N] = X[T, K]·Wᵀ: T == 1 → packed_gemv; else rows of W are decoded
//                          into an fp32 tile (kTileRows × K) that goes through the fp32 sgemm
//                          (kernels/matmul.h), so W is never dequantized whole
//   packed_matmul_backward dX[T, K] += dY[T, N]·W, same tiling (LoRA on a compressed base)
// matmul()/matmul_backward() dispatch here for WeightViews of DType::Packed. Scalar references:
// packed/packed_ref.h.
#pragma once

#include <cstddef>
#include <cstdint>

#include "packed/packed_weight.h"

namespace edgellm {

// y[T, N] (=|+=) x[T, K]·Wᵀ
void packed_matmul(const float* x, const PackedView& w, float* y, int64_t T,
                   bool accumulate = false);
// dx[T, K] += dy[T, N]·W   (accumulates; the caller zeroes)
void packed_matmul_backward(float* dx, const float* dy, const PackedView& w, int64_t T);
// Bytes of the decoded tile either call allocates for T > 1 (freed at return).
size_t packed_matmul_tile_bytes(const PackedView& w, int64_t T);

}  // namespace edgellm
