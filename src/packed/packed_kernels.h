// Kernels over packed weights (weight_format.h), W[N, K] with one output channel per row:
//   packed_decode_row      one row → fp32 (the one decompress adapter the others build on)
//   packed_dot_row / gemv  y = W·x without materialising W (decode; memory-bound)
// The GEMM and its backward, which need the fp32 sgemm, are one level up in
// kernels/packed_matmul.h (this module sits below kernels and io, so loaders can read packed
// tensors and matmul() can dispatch to them).
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

}  // namespace edgellm
