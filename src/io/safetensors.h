// safetensors: u64 LE header length N, N bytes of JSON {name: {dtype, shape, data_offsets:
// [begin, end]}, "__metadata__": {str: str}}, then the data; offsets are relative to the byte
// after the header. edgellm reads F32/F16/BF16 (what LLaMA-family checkpoints use) and U8 (the
// byte parts of packed weights, io/packed_tensors.h).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/tensor_set.h"
#include "io/tensor_stream.h"

namespace edgellm {

// Maps `path` and returns its tensors (names and layout exactly as stored). Checks that every
// entry has a known dtype, a shape whose byte size equals its offset range, offsets inside the
// file and no two ranges overlapping; errors name the file, the tensor and the field.
std::vector<Tensor> read_safetensors(const std::string& path, nlohmann::json* metadata = nullptr);

// Writes a safetensors file atomically (8-byte aligned header, tensors packed in order).
void write_safetensors(const std::string& path, const std::vector<TensorOut>& outs,
                       const nlohmann::json& metadata = nlohmann::json::object());

const char* safetensors_dtype_name(DType t);  // "F32", "F16", "BF16", "U8"; throws for others

}  // namespace edgellm
