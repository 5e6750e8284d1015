// How compressed linears (Tensor of DType::Packed) are stored in safetensors, and the compression
// record that describes them (layout in docs/formats.md, "Compressed models"):
//
//   <name>.qcodes   U8   [rows, code_row_bytes] (dense, N:M) or [bytes] (bitmask: one stream)
//   <name>.qscales  F16  [rows, n_groups]        quantized formats only
//   <name>.qzeros   U8   [rows, n_groups]        asym only
//   <name>.qindex   U8   [rows, index_row_bytes] bitmask or N:M positions only
//
// where <name> is the weight's HF name (rows in the HF layout, q/k permuted like dense tensors).
// The safetensors __metadata__ key "edgellm.compression" holds a JSON string:
//   {"version": 1,
//    "tensors": {<name>: {"format": "b4-asym-g128-bitmask", "bits": 4, "group": 128,
//                         "scheme": "asym", "sparse": "bitmask", "shape": [rows, cols],
//                         "kept": <weights kept by the pruner>, "bytes": <stored bytes>}, ...},
//    ...anything else the compressor records: "policy", "sensitivity", "provenance"}
// "format" (WeightFormat::name) is the truth; the other per-tensor fields repeat it for readers
// that do not parse names and are checked against it at load.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "io/tensor_stream.h"

namespace edgellm {

inline constexpr const char* kCompressionMetaKey = "edgellm.compression";
inline constexpr int kCompressionVersion = 1;

// The parts of packed tensor `t` as TensorOuts named out_name + ".q*", rows reordered by `map`.
std::vector<TensorOut> packed_tensor_outs(const Tensor& t, const std::string& out_name,
                                          const RowMap& map);
// The per-tensor entry of the compression record.
nlohmann::json packed_tensor_entry(const Tensor& t);

// The compression record of a safetensors file's __metadata__ (null when it has none); errors
// name `file`.
nlohmann::json compression_record(const nlohmann::json& st_metadata, const std::string& file);
// Replaces the parts of every tensor the record lists by one Packed tensor (placed where its
// codes were). Fails, naming `file` and the tensor, on a missing or extra part, a part of the
// wrong dtype or size, an entry inconsistent with its format, or a stray ".q*" tensor that no
// entry claims.
std::vector<Tensor> assemble_packed_tensors(std::vector<Tensor> raw, const nlohmann::json& record,
                                            const std::string& file);

// Each packed linear's record into ck.config.layers[l].linear[t] (model/config.h LayerConfig):
// the grid's bits, group and scheme (none for pruned-only fp16 values), the N:M pattern, and
// sparsity = its pruned / total weights (the record's kept count, whatever layout stores it).
// Linears of one layer may differ (per-linear allocation); unpacked linears keep the config's.
void apply_layer_configs(Checkpoint& ck);

// What a checkpoint stores, per decoder layer and in total, counting every stored byte (codes,
// scales, zeros, masks/indices, and every unpacked tensor as stored):
//   {"layers": [{"layer", "bits", "sparsity", "format", "params", "bytes", "bits_per_weight"}]
//               (the layer's 7 linears),
//    "linear_params", "linear_bytes", "linear_bits_per_weight",
//    "params" (all weights, tied head once), "tensor_bytes" (all stored tensors),
//    "bits_per_weight" = 8·tensor_bytes / params}
// written_as: count the unpacked tensors as save_hf_dir(ck, dir, *written_as) stores them
// (matrices in that dtype, vectors in f32) rather than as held in memory (a bf16 source's
// embeddings written as f32 take twice the bytes they take here).
nlohmann::json storage_summary(const Checkpoint& ck,
                               std::optional<DType> written_as = std::nullopt);

}  // namespace edgellm
