// Storage types of weights. Compute is always fp32; a stored row is decoded ("dequantized") into
// fp32 by one adapter (decode_row) that every kernel goes through, so a new format needs only a
// decoder, an encoder and distortion statistics.
//
// Block formats (the GGUF ones keep GGUF's byte layout so GGUF files can be mapped, not copied):
//   Q8_0: 32 values per block: f16 scale d, int8 q[32];          x = d*q            (34 B/32)
//   Q4_0: 32 values per block: f16 scale d, u8 qs[16];           x = d*(nibble-8)   (18 B/32)
//         low nibbles hold values 0..15, high nibbles 16..31.
//   Q4_K: 256-value super-blocks of 8 sub-blocks of 32: f16 d, f16 dmin, 12 bytes of packed
//         6-bit sub-block scales/mins, u8 qs[128]; x = d*sc*q - dmin*m      (144 B/256)
//   Q6_K: 256-value super-blocks of 16 sub-blocks of 16: u8 ql[128] (low 4 bits), u8 qh[64]
//         (high 2 bits), i8 scales[16], f16 d; x = d*scale*(q-32)          (210 B/256)
// A row's length must be a multiple of the block size of its type.
//
// Two entries are not weight encodings of their own:
//   U8      raw bytes (the parts of a packed weight as safetensors stores them);
//   Packed  a compressed linear whose bytes are described by a WeightFormat
//           (packed/weight_format.h) and live in Tensor::packed, not in rows of this type. It has
//           no fixed row size: dtype_block_bytes/decode_row/encode_row/dot_row refuse it, and
//           every reader of a weight dispatches on it (matmul -> packed_matmul, row decode ->
//           packed_decode_row).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "simd/simd.h"

namespace edgellm {

enum class DType : uint8_t { F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, I32, U8, Packed };

const char* dtype_name(DType t);
// Parses "f32", "F16", "bf16", "q8_0", ...; throws Error naming `what` and the value.
DType dtype_from_name(const std::string& name, const std::string& what);
int64_t dtype_block_size(DType t);   // values per block (1 for scalar types)
int64_t dtype_block_bytes(DType t);  // bytes per block (throws for Packed)
// Bytes of a row of n values; throws if n is not a multiple of the block size.
size_t dtype_row_bytes(DType t, int64_t n);
bool dtype_is_quantized(DType t);  // block types and Packed

// fp16 / bf16 scalar conversion (round to nearest even).
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}
uint16_t f32_to_bf16(float f);

// The one decompress adapter: decode n values of a row stored as `t` into fp32.
void decode_row(DType t, const void* src, float* dst, int64_t n);
// Index of the first of n stored values that decodes to NaN or ±Inf, or -1 if none. Reads the
// bits, never decodes: f32/f16/bf16 by their exponent field, block types by their f16 scales
// (integer codes are always finite), so a load-time scan costs one pass over the bytes. For a
// block type the index is that of the block's first value; n must be a multiple of the block.
int64_t first_nonfinite(DType t, const void* data, int64_t n);
// Encode n fp32 values into type `t` (all types; quantizers use round-to-nearest as GGUF does).
void encode_row(DType t, const float* src, void* dst, int64_t n);
// Q8_0 / Q4_0 with the scale of each 32-value block given (fp16 bit patterns d[n/32]) instead
// of fitted: q = round(x/d) clamped to the type's levels. Exact when every value is an integer
// multiple of its block's scale within [-127, 127] (Q8_0) or [-8, 7] (Q4_0) — e.g. a symmetric
// b-bit grid (b <= 8, resp. b <= 4) exported to GGUF with its own scales.
void encode_row_with_scales(DType t, const float* src, const uint16_t* d, void* dst, int64_t n);
// dot(decode(row), x) without materialising the row; the decode-GEMV inner loop.
float dot_row(DType t, const void* row, const float* x, int64_t n);
// dot_row's kernel for type t on the active SIMD target as a plain function pointer (n values,
// a multiple of the block size), fetched once by loops over many rows; nullptr for types
// without one (use dot_row).
using DotRowFn = float (*)(const void* row, const float* x, int64_t n);
DotRowFn dot_row_kernel(DType t);
// The portable reference of dot_row (decode a block at a time, accumulate in double); the SIMD
// kernels are tested against it, and it serves types/CPUs without a kernel.
float dot_row_ref(DType t, const void* row, const float* x, int64_t n);

// The decode GEMV of block-quantized rows with 8-bit activations, as llama.cpp computes it:
// `quantize()` turns x[n] (n a multiple of 32) into per-32-block codes and scales once per GEMV,
// and dot_qx_kernel's integer kernel (simd qdot) multiplies every row by them. It replaces
// dot_row for T = 1 on Q8_0 / Q4_0 / Q4_K / Q6_K weights: ~2-3x less arithmetic per weight, at
// the cost of rounding x to 8 bits per block (max |x| of each block / 127 per step), the error
// llama.cpp's decode makes too. Prefill (T > 1) keeps fp32 activations.
struct QuantizedActivations {
  std::vector<int8_t> q;   // codes in [-127, 127]
  std::vector<float> d;    // per-block scale: max |x| / 127 (0 for an all-zero block)
  std::vector<int32_t> s;  // per-block sum of the codes
  std::vector<double> ds;  // prefix sums of d·s (simd.h QuantX)
  std::vector<float> d8;   // each d 8 times (simd.h QuantX)
  // false (and the codes unusable) if x holds a NaN or Inf: that GEMV keeps fp32 activations, so
  // a non-finite value propagates as it would without quantization.
  bool quantize(const float* x, int64_t n);
  simd::QuantX view() const { return {q.data(), d.data(), s.data(), ds.data(), d8.data()}; }
};
// The SIMD layer's kind for a storage type that has dot kernels (simd.h), or none.
std::optional<simd::DotKind> dot_kind(DType t);
// The integer kernel for type t, or nullptr (no integer path: use dot_row_kernel).
simd::QdotFn dot_qx_kernel(DType t);
// Its reference: the decoded row · the dequantized activations d[b]·q[i], accumulated in double.
double dot_qx_ref(DType t, const void* row, const QuantizedActivations& x, int64_t n);

}  // namespace edgellm
