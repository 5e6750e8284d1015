// Linear layers: y[T, N] = x[T, K] · W[N, K]ᵀ, W stored in any DType (dtype.h), one output
// channel per row. This is where nearly all FLOPs of the model go.
//
// Paths (chosen per call, all exact up to fp32 summation order):
//   * T == 1 (decode): a GEMV that reads each weight row once, decoding on the fly (dot_row for
//     quantized/half types, an AVX-512 fp32 dot for F32) — memory-bound, parallel over rows.
//   * T > 1, F32 weights: oneDNN sgemm straight on the stored (mmapped) weights.
//   * T > 1, other types: weights decoded into an fp32 tile of kTileRows rows and multiplied by
//     sgemm tile by tile, so a quantized model is never dequantized whole.
//   * DType::Packed (compressed linears, packed/weight_format.h): packed_matmul (GEMV through
//     packed_dot_row for T == 1, decoded tiles into sgemm otherwise) and packed_matmul_backward.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/gemm_bf16.h"  // GemmWorkspace
#include "packed/packed_weight.h"
#include "tensor/dtype.h"

namespace edgellm {

struct WeightView {
  DType dtype = DType::F32;
  const uint8_t* data = nullptr;  // rows * row_bytes bytes (null for Packed)
  int64_t rows = 0;               // N: output features
  int64_t cols = 0;               // K: input features
  size_t row_bytes = 0;           // 0 for Packed (rows may differ in length)
  PackedView packed;              // DType::Packed only: the parts the packed kernels read

  const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes; }
  static WeightView f32(const float* w, int64_t rows, int64_t cols);
};

// How matmul() and matmul_backward() multiply F32 weights for T > 1 (training, prefill):
//   Fp32  the oneDNN sgemm, exact up to summation order (default);
//   Bf16  sgemm_bf16 (gemm_bf16.h): activations, weights and output gradients rounded to bf16,
//         products accumulated in fp32 — mixed-precision training: the optimizer updates the
//         fp32 master weights, the GEMMs run at the bf16 rate where the CPU has bf16 dot
//         products (elsewhere the same numerics on the fp32 path, at no gain).
// Process-wide, as PyTorch's torch.set_float32_matmul_precision; a run sets it for its duration
// (ScopedMatmulMath) before planning its workspace; scopes restore the previous setting, so runs
// in one process must nest (the CLI runs one trainer at a time).
enum class MatmulMath { Fp32, Bf16 };
MatmulMath f32_matmul_math();
void set_f32_matmul_math(MatmulMath m);
MatmulMath matmul_math_from_name(const std::string& name);  // "fp32" | "bf16"; throws otherwise
const char* matmul_math_name(MatmulMath m);
// Whether matmul()/matmul_backward() take the sgemm_bf16 path for w (T > 1): Bf16 math and
// contiguous F32 weights.
struct WeightView;  // below
bool bf16_math_on(const WeightView& w);
class ScopedMatmulMath {
 public:
  explicit ScopedMatmulMath(MatmulMath m) : prev_(f32_matmul_math()) { set_f32_matmul_math(m); }
  ~ScopedMatmulMath() { set_f32_matmul_math(prev_); }
  ScopedMatmulMath(const ScopedMatmulMath&) = delete;
  ScopedMatmulMath& operator=(const ScopedMatmulMath&) = delete;

 private:
  MatmulMath prev_;
};

// y[T, N] (=|+=) x[T, K] · Wᵀ. `accumulate` adds into y instead of overwriting.
void matmul(const float* x, const WeightView& w, float* y, int64_t T, bool accumulate = false);

// Plain row-major fp32 GEMM helper over oneDNN: C[M,N] = alpha·op(A)·op(B) + beta·C.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Backward of matmul (y = x·Wᵀ), accumulating (+=; the caller zeroes):
//   dx[T, K] += dy[T, N] · W[N, K]     for any stored dtype (non-F32 rows are decoded tile by
//                                       tile, so frozen quantized weights are never dequantized
//                                       whole);
//   dw[N, K] += dy[T, N]ᵀ · x[T, K]     only for trainable F32 weights (dw == nullptr: frozen).
// dx == nullptr skips the input gradient (e.g. the first layer of a frozen stack).
void matmul_backward(float* dx, float* dw, const float* dy, const float* x, const WeightView& w,
                     int64_t T);

// Workspace beside the operands that matmul(x, w, y, T) and matmul_backward's dx (and, with
// `dw`, its weight gradient) through w need (gemm_bf16.h GemmWorkspace), on the paths they take
// under the current MatmulMath: what a training run plans.
GemmWorkspace matmul_workspace(const WeightView& w, int64_t T);
GemmWorkspace matmul_backward_workspace(const WeightView& w, int64_t T, bool dw = false);

}  // namespace edgellm
