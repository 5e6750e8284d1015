// The SIMD kernels: written once with Highway (hwy/highway.h) in the *_kernels.cpp files of this
// folder, compiled there for every target of the build (x86: scalar, SSE4, AVX2+FMA+F16C,
// AVX-512; aarch64: NEON, SVE) and chosen at run time by one dispatch decision (simd/target.h).
// Nothing outside src/simd includes an ISA-specific header (tests/simd checks it); callers see only
// these plain functions. Every one has a scalar reference in its caller's module or in
// tests/simd that the per-target tests compare against. Pointers need no alignment; n may be any
// size (tails run lane by lane).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace edgellm::simd {

// ---- dot: decode GEMV inner loops (tensor/dot_row.cpp, kernels/matmul.cpp gemv) -------------
float dot_f32(const float* a, const float* b, int64_t n);
// out[j] = r_j · x for four rows at once (x loaded once per four rows).
void dot4_f32(const float* r0, const float* r1, const float* r2, const float* r3, const float* x,
              int64_t n, float* out);
float dot_f16(const void* w, const float* x, int64_t n);   // w: n fp16 values
float dot_bf16(const void* w, const float* x, int64_t n);  // w: n bf16 values
// Block formats of tensor/dtype.h (GGUF byte layouts); nb = number of blocks.
float dot_q8_0(const void* w, const float* x, int64_t nb);
float dot_q4_0(const void* w, const float* x, int64_t nb);
float dot_q4_k(const void* w, const float* x, int64_t nb);
float dot_q6_k(const void* w, const float* x, int64_t nb);

// Hoisted dispatch for loops over many rows (a GEMV calls the kernel ~10^5 times per token; the
// per-call dispatch, a call into libhwy plus an indirect call, was ~5% of a Q8_0 decode): the
// active target's kernel as a plain function pointer, fetched once per GEMV. Valid until
// set_target() changes the target.
enum class DotKind { F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K };
using DotRowFn = float (*)(const void* w, const float* x, int64_t n);  // n values (whole blocks)
using Dot4Fn = void (*)(const float*, const float*, const float*, const float*, const float*,
                        int64_t, float*);
using DotF32Fn = float (*)(const float*, const float*, int64_t);
DotRowFn dot_row_kernel(DotKind k);
Dot4Fn dot4_f32_kernel();
DotF32Fn dot_f32_kernel();

// ---- qdot: the same GEMV with 8-bit activations (qdot_kernels.cpp) -------------------------
// Activations quantized per block of 32 values as llama.cpp's Q8_0 does for its integer dot
// products: x[i] ≈ d[i/32]·q[i], q in [−127, 127] as int8, s[b] = Σ q over block b (for the
// Q8_0 / Q4_0 / Q4_K offsets). Made by QuantizedActivations::quantize (tensor/dot_row.cpp).
// ds[b] = Σ_{b' < b} d[b']·s[b'] (nb + 1 values, double): an offset o over blocks [b0, b1) adds
// o·(ds[b1] − ds[b0]) to a dot product (the packed kernels' group zero points). d8: each d[b]
// 8 times (8·nb floats), so that blocks b and b + 1 scale the 16 int32 lanes of one 512-bit
// vpdpbusd with one 64-byte load (the packed kernels).
struct QuantX {
  const int8_t* q = nullptr;
  const float* d = nullptr;
  const int32_t* s = nullptr;
  const double* ds = nullptr;
  const float* d8 = nullptr;
};
// row · x for a Q8_0 / Q4_0 / Q4_K / Q6_K row of n values (whole blocks); each block's integer
// sum is exact, its scale applied in fp32. nullptr for kinds without an integer kernel.
using QdotFn = float (*)(const void* w, const QuantX& x, int64_t n);
// The kernel decode uses: on the avx512 / avx512_dl targets of a CPU with AVX512-VNNI the 8-bit
// dot-product kernel (qdot_vnni.cpp), else the active target's portable one.
QdotFn qdot_kernel(DotKind k);
// The active target's portable kernel (int16 multiply-adds; qdot_kernels.cpp), for tests and
// benchmarks of both.
QdotFn qdot_portable_kernel(DotKind k);
// The AVX512-VNNI kernel, or nullptr where the CPU (or the architecture) has no AVX512-VNNI.
QdotFn qdot_vnni_kernel(DotKind k);

// ---- packed weights (packed/packed_kernels.cpp; layout in packed/weight_format.h) ----------
// One dense quantized row: column c's `bits`-bit code (2..8) at bit c·bits of `codes`, LSB first;
// its value is scale_g·(code − off_g) for group g = c / group, with scale_g the fp16 scales[g] and
// off_g = zeros ? zeros[g] : sym_off. Every group must start on a byte (group·bits a multiple of
// 8, or group >= cols). Only codes[0, readable) is read; readable >= (cols·bits + 7) / 8, and
// more (the rows that follow in the same buffer) lets the kernel use whole 16-byte loads up to
// the row's end instead of copying its last bytes.
struct PackedRowQ {
  const uint8_t* codes = nullptr;
  int64_t readable = 0;
  const uint16_t* scales = nullptr;
  const uint8_t* zeros = nullptr;
  int64_t cols = 0, group = 0;
  int bits = 0, sym_off = 0;
};
float packed_dot_q(const PackedRowQ& row, const float* x);  // row · x[cols]
void packed_decode_q(const PackedRowQ& row, float* dst);    // dst[cols] = the row's values
// Codes already unpacked to uint16 (sparse rows, groups not on byte boundaries):
float dot_codes(const uint16_t* code, int off, const float* x, int64_t n);  // Σ (code−off)·x
void decode_codes(const uint16_t* code, int off, float scale, float* dst,
                  int64_t n);  // dst = scale·(code−off)
// Hoisted forms (as dot_row_kernel): fetched once per GEMV / row decode.
using PackedDotQFn = float (*)(const PackedRowQ&, const float*);
using PackedDecodeQFn = void (*)(const PackedRowQ&, float*);
using DotCodesFn = float (*)(const uint16_t*, int, const float*, int64_t);
using DecodeCodesFn = void (*)(const uint16_t*, int, float, float*, int64_t);
PackedDotQFn packed_dot_q_kernel();
PackedDecodeQFn packed_decode_q_kernel();
DotCodesFn dot_codes_kernel();
DecodeCodesFn decode_codes_kernel();

// ---- packed weights × 8-bit activations (packed_vnni.cpp) ---------------------------------
// row · x with x quantized per 32 values (QuantX), for rows whose groups are whole 32-column
// blocks (cols a multiple of 32; group a multiple of 32, or >= cols). Each block's integer sum is
// exact; the result equals Σ_c ŵ_c·d_{c/32}·q_c up to fp32 rounding.
// A dense row reads codes[0, readable) only (PackedRowQ). A bitmask row: its kept codes start at
// bit `bit` of `codes` (the matrix's one code stream),
// column c kept iff bit c % 8 of mask[c / 8]; pruned columns contribute 0.
struct PackedRowMaskQ {
  PackedRowQ row;  // scales, zeros, cols, group, bits, sym_off (row.codes unused)
  const uint8_t* codes = nullptr;
  const uint8_t* codes_end = nullptr;  // one past the stream's last byte (reads stay below it)
  uint64_t bit = 0;
  const uint8_t* mask = nullptr;
};
using PackedQdotFn = float (*)(const PackedRowQ&, const QuantX&);
using PackedMaskQdotFn = float (*)(const PackedRowMaskQ&, const QuantX&);
// On the avx512 targets of a CPU with AVX512-VNNI, VBMI and VBMI2 (Ice Lake, Zen 4 and later) the
// vpdpbusd kernels; nullptr elsewhere (the caller keeps the fp32 path: packed_dot_q, dot_codes).
PackedQdotFn packed_qdot_kernel();
PackedMaskQdotFn packed_mask_qdot_kernel();
// The same kernels regardless of the active target (nullptr where the CPU lacks them), for tests.
PackedQdotFn packed_qdot_vnni_kernel();
PackedMaskQdotFn packed_mask_qdot_vnni_kernel();

// ---- exp / softmax / activations (kernels/vexp.h, activations*.cpp) --------------------------
// y[i] = exp(x[i]); y may alias x. Relative error <= ~2 ulp on [-87, 88], 0 below -104, +inf
// above 88.73.
void exp_n(const float* x, float* y, int64_t n);
// sum exp(x[i] - shift), partial sums of at most a few hundred terms added in double.
double sum_exp_shifted(const float* x, int64_t n, float shift);
// d[i] += scale * exp(x[i] - shift)
void axpy_exp_shifted(float* d, const float* x, int64_t n, float shift, float scale);
// out[i] = silu(gate[i]) * up[i]
void swiglu(float* out, const float* gate, const float* up, int64_t n);
// dgate += dout*up*silu'(gate), dup += dout*silu(gate)
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n);

// ---- RMSNorm row pieces ------------------------------------------------------------------------
double sum_squares(const float* x, int64_t n);                                   // in double
void scale_mul(float* out, const float* x, float s, const float* w, int64_t n);  // x*s*w

// ---- RoPE: rotate interleaved pairs (p[2i], p[2i+1]) by angles with cos c[i], sin s[i] --------
void rope_pairs(float* p, const float* c, const float* s, int64_t half);

// ---- attention inner loops -------------------------------------------------------------------
void axpy(float* y, float a, const float* x, int64_t n);  // y += a*x
// Softmax of p[0, n) in place (n >= 1) and zeros in p[n, S) (a causal attention row).
void softmax_prefix(float* p, int64_t n, int64_t S);
// Its backward for one row: d[i] ← p[i]·(d[i] − Σ_k p[k]·d[k]) over [0, n).
void softmax_backward_row(float* d, const float* p, int64_t n);

// ---- optimizer (optim_kernels.cpp) ----------------------------------------------------------
// One AdamW step's constants: g is scaled by clip; m = b1·m + (1−b1)·g, v = b2·v + (1−b2)·g²;
// p −= decay·p + lr_bc1·m / (sqrt(v·inv_bc2) + eps)   (lr_bc1 = lr/(1−b1^t), inv_bc2 =
// 1/(1−b2^t), decay = lr·weight_decay).
struct AdamWStep {
  float b1, b2, eps, clip, lr_bc1, inv_bc2, decay;
};
inline void adamw_f32_one(float& p, float g, float& m, float& v, const AdamWStep& s) {
  const float gi = g * s.clip;
  m = s.b1 * m + (1.f - s.b1) * gi;
  v = s.b2 * v + (1.f - s.b2) * (gi * gi);
  p -= s.decay * p + s.lr_bc1 * m / (std::sqrt(v * s.inv_bc2) + s.eps);
}
void adamw_f32(float* p, const float* g, float* m, float* v, int64_t n, const AdamWStep& s);
// 8-bit block-wise moments (optim_kernels.cpp has the format): mq/uq codes of m and sqrt(v),
// [n]; ms/us their per-block scales, [ceil(n / kQ8Block)].
constexpr int64_t kQ8Block = 256;
void adamw_q8(float* p, const float* g, uint8_t* mq, float* ms, uint8_t* uq, float* us, int64_t n,
              const AdamWStep& s);
// Scalar twins of the 8-bit code: the kernel's tails and the tests' reference.
// 1/scale, or 0 for a scale below the smallest normal float (whose inverse would overflow, and
// 0·inf would turn zero moments into NaN): such a block stores zeros.
inline float q8_inverse_scale(float scale) { return scale >= 1.17549435e-38f ? 1.f / scale : 0.f; }
inline float q8_decode_one(uint8_t c, float scale) {
  const uint32_t mag = c & 0x7fu;
  if (mag == 0) return 0.f;
  const uint32_t bits = ((mag + ((127u - 15u) << 3)) << 20) | (uint32_t(c & 0x80u) << 24);
  float x;
  std::memcpy(&x, &bits, 4);
  return x * scale;
}
inline uint8_t q8_encode_one(float x, float scale) {
  const float y = x * q8_inverse_scale(scale);
  uint32_t yb, ab;
  std::memcpy(&yb, &y, 4);
  const float a = std::fmin(std::fabs(y), 1.f);
  std::memcpy(&ab, &a, 4);
  const uint32_t mag = ab + 0x80000u;  // half of the lowest kept mantissa bit: to nearest
  if ((mag >> 23) < 127u - 14u) return 0;
  return static_cast<uint8_t>(((mag - ((127u - 15u) << 23)) >> 20) | ((yb & 0x80000000u) >> 24));
}

// ---- fp16 / bf16 conversion (round to nearest even) -------------------------------------------
void f16_to_f32_n(const void* src, float* dst, int64_t n);
void f32_to_f16_n(const float* src, void* dst, int64_t n);
void bf16_to_f32_n(const void* src, float* dst, int64_t n);
void f32_to_bf16_n(const float* src, void* dst, int64_t n);

}  // namespace edgellm::simd
