// safetensors: u64 LE header length N, N bytes of JSON {name: {dtype, shape, data_offsets:
// [begin, end]}, "__metadata__": {str: str}}, then the data; offsets are relative to the byte
// after the header. edgellm reads F32/F16/BF16 (what LLaMA-family checkpoints use) and U8 (the
// byte parts of packed weights, io/packed_tensors.h).
//
// This is the one safetensors reader and writer: models, LoRA adapters and trainer checkpoints
// all go through it (STYLE.md: one reader per format), so every file gets the same checks
// (docs/reliability.md lists them).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/tensor_set.h"
#include "io/tensor_stream.h"

namespace edgellm {

// Maps `path` and returns its tensors (names and layout exactly as stored). Checks, before any
// allocation or read sized by the header: the header length (at most 100,000,000 bytes, the
// format's own limit) against the file; the header is a JSON object without duplicate keys;
// every entry has a known dtype, non-negative integer dimensions whose product (overflow-checked)
// times the element size equals its offset range, offsets inside the data section and no two
// ranges overlapping; "__metadata__" maps strings to strings. Errors name the file, the tensor
// and the field.
std::vector<Tensor> read_safetensors(const std::string& path, nlohmann::json* metadata = nullptr);

// Writes a safetensors file atomically (8-byte aligned header, tensors packed in order).
void write_safetensors(const std::string& path, const std::vector<TensorOut>& outs,
                       const nlohmann::json& metadata = nlohmann::json::object());

const char* safetensors_dtype_name(DType t);  // "F32", "F16", "BF16", "U8"; throws for others

// fp32 convenience layer over the reader and writer above, for adapters and trainer checkpoints.
struct NamedF32 {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> data;  // product(shape) values, row-major
};
// Writes fp32 tensors (metadata {"format": "pt"}, as PyTorch's safetensors writer does).
void write_safetensors_f32(const std::string& path, const std::vector<NamedF32>& tensors);
// The same file written straight from memory the caller keeps: a training checkpoint of the
// parameters and AdamW moments (16 bytes per parameter) without copying them into NamedF32s
// first, which would double their footprint at every save (134M: +1.5 GiB of peak RSS).
struct F32View {
  std::string name;
  std::vector<int64_t> shape;
  const float* data;
  size_t n;  // product(shape)
};
void write_safetensors_f32(const std::string& path, const std::vector<F32View>& tensors);
// A tensor written straight from memory the caller keeps (no staging copy), of any stored dtype:
// what write_safetensors_f32 writes, and files that mix dtypes (a checkpoint's 8-bit moments).
TensorOut view_out(const std::string& name, DType dtype, std::vector<int64_t> shape,
                   const uint8_t* data);
// Reads every tensor of an F32 (or F16/BF16, widened) safetensors file, sorted by name.
std::vector<NamedF32> read_safetensors_f32(const std::string& path);

}  // namespace edgellm
