// BF16 GEMMs against bf16-stored weights: activations are rounded to bf16, products accumulate
// in fp32 (AVX512_BF16 dot products through oneDNN's matmul primitive). About twice the fp32
// sgemm rate on CPUs with AVX512_BF16, at the cost of rounding the activation operand to an 8-bit
// mantissa — the precision every bf16 engine computes in. Used by matmul()/matmul_backward()
// for T > 1 whenever the weights are stored as BF16.
#pragma once

#include <cstdint>

namespace edgellm {

// c[M, N] (+)= bf16(a)[M, K] · W[N, K]ᵀ        (trans_w = true:  the linear layer's forward)
// c[M, N] (+)= bf16(a)[M, K] · W[K, N]         (trans_w = false: dX = dY · W in the backward)
// W is row-major bf16 with `w_rows` rows; a and c are contiguous fp32.
void gemm_bf16(const float* a, const uint16_t* w, float* c, int64_t M, int64_t N, int64_t K,
               bool trans_w, bool accumulate);

// Round-to-nearest-even fp32 -> bf16 of n values (AVX512_BF16 when available).
void f32_to_bf16_n(const float* x, uint16_t* y, int64_t n);

}  // namespace edgellm
