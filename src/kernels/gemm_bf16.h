// BF16 GEMMs: against bf16-stored weights (gemm_bf16: activations rounded to bf16) and between
// two fp32 operands both rounded to bf16 (sgemm_bf16, mixed-precision training); products
// accumulate in fp32 (AVX512_BF16 dot products through oneDNN's matmul primitive). About twice the
// fp32 sgemm rate on CPUs with AVX512_BF16, at the cost of rounding the activation operand to an
// 8-bit mantissa — the precision every bf16 engine computes in. Used by matmul()/matmul_backward()
// for T > 1 whenever the weights are stored as BF16.
//
// On CPUs without a bf16 dot-product instruction set (no AVX512_BF16: AVX2 laptops, most ARM
// boards) oneDNN has no bf16 matmul, so the same contract is computed by the fp32 path: the
// activations are rounded to bf16 all the same (identical numerics up to summation order), the
// weights are widened to fp32 a tile of rows at a time and multiplied by the fp32 sgemm.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace edgellm {

// c[M, N] (+)= bf16(a)[M, K] · W[N, K]ᵀ        (trans_w = true:  the linear layer's forward)
// c[M, N] (+)= bf16(a)[M, K] · W[K, N]         (trans_w = false: dX = dY · W in the backward)
// W is row-major bf16 with `w_rows` rows; a and c are contiguous fp32.
void gemm_bf16(const float* a, const uint16_t* w, float* c, int64_t M, int64_t N, int64_t K,
               bool trans_w, bool accumulate);

// y[M, N] (+)= x[M, K] · W[N, K]ᵀ for weights stored in a quantized form (GGUF blocks, packed
// LUC codes) whose rows decode(r0, nr, tile) writes as fp32 [nr, K], a tile of rows at a time, so
// W is never decoded whole. On the Dnnl path each tile of kDecodedTileRows rows is rounded to bf16
// and multiplied by the oneDNN bf16 matmul, x rounded once for all tiles (the rounding of W's
// decoded values, an 8-bit mantissa, is far below the quantization they came from). On the Fp32
// path tiles of fp32_tile_rows rows go through the fp32 sgemm. Either path's tile buffers are
// held between calls: a prefill makes 7 calls per layer, and fresh multi-MiB buffers cost page
// faults and zeroing each time.
constexpr int64_t kDecodedTileRows = 256;
using DecodeRows = std::function<void(int64_t r0, int64_t nr, float* tile)>;
void gemm_decoded(const float* x, int64_t M, int64_t N, int64_t K, const DecodeRows& decode,
                  float* y, bool accumulate, int64_t fp32_tile_rows);

// C[M, N] (+)= bf16(op(A))[M, K] · bf16(op(B))[K, N], fp32 accumulation, both operands fp32 and
// rounded to bf16 on the way in (op(X) = Xᵀ when trans_x), each at its natural leading
// dimension. The fp32 matmuls of training under MatmulMath::Bf16 (kernels/matmul.h): the forward
// and input gradient against fp32 master weights, and the weight gradient dYᵀ·X.
void sgemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A,
                const float* B, float* C, bool accumulate);

// Memory a GEMM call needs beside its operands, for planning a training run (train/memory.h).
// `operand`, `operand_b`, `scratchpad` and `decoded` are held between calls (the bf16 copies of
// the operands, oneDNN's scratchpad and the decoded tiles, each the largest any call has needed),
// so what a
// run needs of them is the maximum over its calls; `transient` is allocated and freed inside the
// call (decoded weight tiles, the fp32 path's rounded copies), so it too counts at its maximum.
// Not included: oneDNN sgemm's own packing buffers (allocated and freed inside dnnl_sgemm,
// bounded by its blocking, not by the shapes) and the JIT code of cached primitives.
struct GemmWorkspace {
  size_t operand = 0;
  size_t operand_b = 0;  // sgemm_bf16's bf16 copy of its second operand
  size_t scratchpad = 0;
  size_t transient = 0;
  size_t decoded = 0;                  // gemm_decoded's tile and output buffer (Dnnl path)
  void merge(const GemmWorkspace& o);  // element-wise maximum
  size_t total() const { return operand + operand_b + scratchpad + transient + decoded; }
};
// What gemm_bf16(M, N, K, trans_w, accumulate) needs on the path it will take (the oneDNN path
// creates the primitive descriptor, not the primitive, to read its scratchpad size).
GemmWorkspace gemm_bf16_workspace(int64_t M, int64_t N, int64_t K, bool trans_w, bool accumulate);
// What gemm_decoded(M, N, K) needs on the Dnnl path (nothing on the Fp32 path).
GemmWorkspace gemm_bf16_decoded_workspace(int64_t M, int64_t N, int64_t K);
GemmWorkspace sgemm_bf16_workspace(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                                   bool accumulate);
// Grows the held buffers to at least w's operand, operand_b and scratchpad sizes now (before a
// training run's first step), so no later call of the planned shapes allocates.
void gemm_bf16_reserve(const GemmWorkspace& w);
// Bytes gemm_bf16/sgemm_bf16 hold between calls (capacity of the operand copies and scratchpad).
size_t gemm_bf16_held_bytes();
// Frees them (tests measure a run's reservation from zero).
void gemm_bf16_release_held();

// Round-to-nearest-even fp32 -> bf16 of n values (simd::f32_to_bf16_n, on every thread when n is
// large).
void f32_to_bf16_n(const float* x, uint16_t* y, int64_t n);

// Which implementation gemm_bf16 and sgemm_bf16 use. Chosen once: Dnnl when the CPU has AVX512_BF16
// (cpuid), oneDNN's effective ISA includes it, and neither EDGELLM_TARGET forces a SIMD target
// below AVX-512 (which stands in for a CPU without it) nor EDGELLM_BF16_GEMM=fp32 is set; else
// Fp32.
enum class Bf16GemmPath { Dnnl, Fp32 };
Bf16GemmPath bf16_gemm_path();
void set_bf16_gemm_path(Bf16GemmPath p);  // tests: force either path
const char* bf16_gemm_path_name(Bf16GemmPath p);
// The oneDNN path caches one JIT-compiled primitive per shape (M, N, K, layout), least recently
// used first out beyond a fixed bound, so many different sequence lengths cannot grow memory.
size_t bf16_gemm_cached_shapes();
size_t bf16_gemm_max_cached_shapes();
// oneDNN's effective CPU ISA, as a name ("avx512_core_bf16", "avx2", ...).
std::string dnnl_isa_name();

}  // namespace edgellm
