// Kernels over packed weights (weight_format.h), W[N, K] with one output channel per row:
//   packed_decode_row      one row → fp32 (the one decompress adapter the others build on)
//   packed_dot_row / gemv  y = W·x without materialising W (decode; memory-bound)
// The GEMM and its backward, which need the fp32 sgemm, are one level up in
// kernels/packed_matmul.h (this module sits below kernels and io, so loaders can read packed
// tensors and matmul() can dispatch to them).
// The arithmetic runs in the SIMD dispatch layer (simd.h "packed weights", docs/simd.md): dense
// quantized rows go whole to a kernel that unpacks the bits in vector registers; fp16 rows to
// dot_f16; sparse rows (bitmask, N:M) are scattered here into dense tiles of uint16 codes (pruned
// columns hold the code of 0) that a dispatched tile kernel multiplies. Scalar references:
// packed_ref.h.
#pragma once

#include <cstdint>

#include "packed/packed_weight.h"
#include "simd/simd.h"

namespace edgellm {

void packed_decode_row(const PackedView& w, int64_t r, float* dst);    // dst[K]
float packed_dot_row(const PackedView& w, int64_t r, const float* x);  // x[K]
// y[r] (=|+=) W[r]·x for rows r in [r0, r1), on the calling thread (kernels/packed_matmul
// parallelises over row ranges).
void packed_gemv(const PackedView& w, const float* x, float* y, bool accumulate, int64_t r0,
                 int64_t r1);
// The same rows against 8-bit activations (simd.h "packed weights × 8-bit activations"; x
// quantized per 32 values, as tensor/dtype.h QuantizedActivations makes it). Only where
// packed_gemv_qx_kernels(w) has kernels: dense or bitmask rows of whole 32-column groups, on a CPU
// with AVX512-VNNI/VBMI/VBMI2; elsewhere decode keeps fp32 activations.
struct PackedQxKernels {
  simd::PackedQdotFn dense = nullptr;
  simd::PackedMaskQdotFn mask = nullptr;
  explicit operator bool() const { return dense || mask; }
};
PackedQxKernels packed_gemv_qx_kernels(const PackedView& w);
void packed_gemv_qx(const PackedView& w, const PackedQxKernels& k, const simd::QuantX& x, float* y,
                    bool accumulate, int64_t r0, int64_t r1);

}  // namespace edgellm
