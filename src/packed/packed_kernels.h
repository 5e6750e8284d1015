// Kernels over packed weights (weight_format.h), W[N, K] with one output channel per row:
//   packed_decode_row      one row → fp32 (the one decompress adapter the others build on)
//   packed_dot_row / gemv  y = W·x without materialising W (decode; memory-bound)
//   packed_matmul          Y[T, N] = X[T, K]·Wᵀ: T == 1 → gemv; else rows of W are decoded into
//                          an fp32 tile (kTileRows × K) that goes through the fp32 sgemm
//                          (kernels/matmul.h), so W is never dequantized whole
//   packed_matmul_backward dX[T, K] += dY[T, N]·W, same tiling (LoRA on a compressed base)
// Portable C++ written for auto-vectorisation: codes are unpacked 8 at a time from b bytes into a
// small column tile, then a plain multiply-add loop runs over the tile. SIMD-specific versions
// slot in behind the same signatures. Scalar references: packed_ref.h.
#pragma once

#include <cstdint>

#include "packed/packed_weight.h"

namespace edgellm {

void packed_decode_row(const PackedView& w, int64_t r, float* dst);    // dst[K]
float packed_dot_row(const PackedView& w, int64_t r, const float* x);  // x[K]
// y[N] (=|+=) W·x
void packed_gemv(const PackedView& w, const float* x, float* y, bool accumulate = false);
// y[T, N] (=|+=) x[T, K]·Wᵀ
void packed_matmul(const float* x, const PackedView& w, float* y, int64_t T,
                   bool accumulate = false);
// dx[T, K] += dy[T, N]·W   (accumulates; the caller zeroes)
void packed_matmul_backward(float* dx, const float* dy, const PackedView& w, int64_t T);

}  // namespace edgellm
