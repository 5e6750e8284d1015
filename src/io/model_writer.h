// Writing a whole model tensor by tensor. A ModelSource says where each tensor of the walk
// (tensor_walk.h) comes from — a stored tensor or a row generator, both in the internal layout —
// so saving a loaded checkpoint and generating a random model share one writer per format, and
// neither holds more than one chunk of rows in memory.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "io/tensor_stream.h"
#include "io/tensor_walk.h"
#include "packed/weight_format.h"

namespace edgellm {

struct TensorSource {
  const Tensor* stored = nullptr;  // the tensor itself (internal layout), or
  RowGen gen;                      // a generator of its rows (internal layout) as f32
};
using ModelSource = std::function<TensorSource(const TensorSpec&)>;

// Reads every tensor from `ck` (throws naming the missing one).
ModelSource checkpoint_source(const Checkpoint& ck);
// Random weights: linears, embeddings and biases ~ N(0, stddev^2), norms = 1. Each row is
// seeded from (seed, tensor name, row), so the model is deterministic for a seed whatever the
// format, dtype or thread count.
ModelSource random_source(uint64_t seed, float stddev = 0.02f);
// The same with a standard deviation chosen per tensor.
ModelSource random_source(uint64_t seed, std::function<float(const TensorSpec&)> stddev_of);
// Pretraining initialisation (GPT-2, llama2.c): every matrix ~ N(0, stddev^2) except the two
// projections that write into the residual stream (o_proj, down_proj), whose stddev is divided
// by sqrt(2·L) so the residual's variance does not grow with depth; norms 1, biases 0.
ModelSource pretrain_init_source(uint64_t seed, int n_layers, float stddev = 0.02f);

// HF directory: config.json + model.safetensors, q/k rows (and biases) in the HF layout.
// `dtype` (f32/f16/bf16) applies to unpacked matrices; vectors stay f32. Packed tensors are
// written as their parts (io/packed_tensors.h), and when there are any, `compression` (the
// checkpoint's compression record: policy, provenance, ...) is stored with the per-tensor entries
// regenerated from the tensors themselves.
void write_hf_dir(const ModelConfig& c, const ModelSource& src, const std::string& dir, DType dtype,
                  const nlohmann::json& compression = nullptr);

// GGUF v3 with arch llama (interleaved q/k) or qwen2 (NeoX q/k, permuted back). `dtype` applies to
// matrices; a matrix whose row length is not a multiple of the type's block falls back to the
// nearest type that fits (gguf_matrix_type). `tokenizer_meta` holds tokenizer.* keys (may be null).
void write_gguf(const ModelConfig& c, const ModelSource& src, const std::string& path, DType dtype,
                const nlohmann::json& tokenizer_meta);

// The stored type of a GGUF matrix with rows of `cols` values when `want` was asked for:
// Q4_K -> Q4_0 and Q6_K -> Q8_0 when cols % 256 != 0, then F16 when cols % 32 != 0.
DType gguf_matrix_type(DType want, int64_t cols);
// The GGUF type a packed weight exports to: the nearest standard type this writer supports that
// keeps at least its bits (2-4 -> Q4_K, 5-6 -> Q6_K, 7-8 -> Q8_0, 16 -> F16; Q3_K/Q5_K are not
// implemented, so 3 and 5 bits take the next larger), then gguf_matrix_type's fallbacks. A
// symmetric <= 4-bit grid whose groups cover whole 32-blocks goes to Q4_0 instead (same 4.5
// bits/weight as Q4_K, and exact); Q8_0 holds any symmetric <= 8-bit grid exactly likewise.
DType gguf_type_for_format(const WeightFormat& f, int64_t cols);

// The TensorOuts the two writers stream (names, stored types and row order of each format).
// hf_tensor_outs adds the per-tensor entry of every packed tensor to `*packed` when given.
std::vector<TensorOut> hf_tensor_outs(const ModelConfig& c, const ModelSource& src, DType dtype,
                                      nlohmann::json* packed = nullptr);
std::vector<TensorOut> gguf_tensor_outs(const ModelConfig& c, const ModelSource& src, DType dtype);

// ggml type ids of the DTypes (F32=0, F16=1, Q4_0=2, Q8_0=8, Q4_K=12, Q6_K=14, BF16=30, I32=26).
uint32_t ggml_type_of(DType t);

}  // namespace edgellm
