// Loading and saving whole checkpoints in the three formats edgellm reads:
//   * llama2.c .bin (legacy v0 header of 7 int32, f32 weights; negative vocab = untied head)
//   * Hugging Face directory: config.json + model.safetensors or sharded
//     model-0000x-of-0000y.safetensors with model.safetensors.index.json (f32/f16/bf16, and
//     packed compressed linears: io/packed_tensors.h)
//   * GGUF v3 (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K)
// Every reader returns a Checkpoint in the conventions of tensor_set.h and checks each tensor's
// shape against the config before returning, so a model never sees a malformed checkpoint.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "io/tensor_set.h"
#include "model/config.h"

namespace edgellm {

enum class CheckpointFormat { Llama2c, HfSafetensors, Gguf };
const char* format_name(CheckpointFormat f);

struct Checkpoint {
  ModelConfig config;
  TensorSet tensors;
  CheckpointFormat format = CheckpointFormat::HfSafetensors;
  std::string path;  // what the user passed
  // GGUF only: the tokenizer.* metadata keys (tokenizer.ggml.model, .tokens, .scores,
  // .token_type, .merges, .pre, .bos_token_id, ...) as JSON, for tokenizer_from_gguf().
  nlohmann::json gguf_tokenizer;
  // Compressed checkpoints only (io/packed_tensors.h, docs/formats.md): the compression record —
  // per-tensor formats, and whatever the compressor added (policy, sensitivities, provenance).
  // Null for a plain checkpoint. Saving writes it back with the per-tensor entries regenerated.
  nlohmann::json compression;
};

// Detects the format: a directory -> HF; GGUF magic -> GGUF; otherwise llama2.c .bin.
Checkpoint load_checkpoint(const std::string& path);

Checkpoint load_llama2c(const std::string& path);
Checkpoint load_hf_dir(const std::string& dir);
Checkpoint load_gguf(const std::string& path);

// Writers. `dtype` applies to 2-D weight matrices (norms stay F32); F32 means "as f32".
// HF: writes dir/config.json + dir/model.safetensors (q/k rows permuted to the HF layout); packed
// tensors are written packed, with ck.compression as the compression record.
void save_hf_dir(const Checkpoint& ck, const std::string& dir, DType dtype = DType::F32);
// GGUF v3, arch "llama" or "qwen2", with tokenizer metadata if given (else the checkpoint's own).
// Packed tensors become the nearest GGUF type that keeps their bits (gguf_type_for_format).
void save_gguf(const Checkpoint& ck, const std::string& path, DType dtype = DType::F32,
               const nlohmann::json& tokenizer_meta = nullptr);

// Checks presence, dtype class and shape of every tensor the config implies; throws naming the
// file (ck.path), the tensor, the expected and the found shape. Only linears and an untied head
// may be Packed.
void validate_tensors(const Checkpoint& ck);

// The value format a storage type implies: Q8_0 8-bit sym groups of 32, Q4_0 4-bit sym groups of
// 32 (codes offset by 8), Q4_K 4-bit asym groups of 32 (scale and min per sub-block), Q6_K 6-bit
// sym groups of 16; the default (full precision) for f32/f16/bf16.
LinearFormat stored_linear_format(DType t);
// Fills bits/group/scheme of every linear in ck.config.layers from its stored tensor where the
// storage is block-quantized (such values sit on that grid whatever the config said); float
// storage keeps the config's record (values fake-quantized in floats). Sparsity, N:M, exits and
// LoRA ranks only come from the config. load_checkpoint() and Model (after re-encoding) call it.
void fill_linear_formats(Checkpoint& ck);
// Scans every tensor's stored bits once (tensor/dtype.h first_nonfinite) and throws naming the
// file, the tensor and the element if any value is NaN or ±Inf: such a weight turns every later
// activation into NaN, which would otherwise surface only as a NaN perplexity or loss.
// drop_pages: drop each scanned tensor's whole pages from the resident set right after its scan
// (a mapped model that stays mapped: without it the scan alone makes the whole file resident,
// and the layer-by-layer commands — profile, compress — would peak at the full model).
void check_finite_tensors(const Checkpoint& ck, bool drop_pages = false);

// HF <-> internal RoPE layout permutation of q/k rows (see tensor_set.h). n_heads is the number
// of heads stacked in the tensor's rows; works on any dtype because whole rows move.
Tensor permute_hf_to_interleaved(const Tensor& t, int n_heads);
Tensor permute_interleaved_to_hf(const Tensor& t, int n_heads);

}  // namespace edgellm
