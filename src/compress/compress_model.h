// Compressing a whole checkpoint, linear by linear, into a compressed checkpoint: the decoder's
// linears become Packed tensors (packed/packed_tensor.h), everything else is shared with the
// source. save_hf_dir() then writes it as a compressed model directory (io/packed_tensors.h,
// docs/formats.md); every command loads it like any checkpoint.
//
// Streaming: each linear is decoded to fp32 (in the internal row layout), compressed by
// compress_linear and packed; only the packed result is kept, so peak memory is the packed output
// plus one linear's working set — never a second dense model.
//
// What each linear gets is a callback, so the uniform allocation of `edgellm compress` and the
// per-layer / per-linear policies of the profile step (LUC, budget) use the same path; so is the
// calibration source (per-linear statistics from the layer taps, needed by GPTQ/SparseGPT/Wanda).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "compress/compress_linear.h"
#include "io/checkpoint.h"
#include "io/tensor_walk.h"

namespace edgellm {

// The spec of one linear (TensorRole::Linear, or the untied TensorRole::Head), or nullopt to keep
// it as stored.
using LinearPlan = std::function<std::optional<CompressSpec>(const TensorSpec&)>;
// Calibration statistics of one linear's inputs (null: none; rtn + none/magnitude need none).
using LinearCalib = std::function<const CalibStats*(const TensorSpec&)>;
// Called after each linear is compressed (progress, per-layer reports) with its packed tensor
// (sequential calibration runs the compressed layer through it: eval/calibrated_compress.h).
using LinearDone =
    std::function<void(const TensorSpec&, const CompressReport&, const Tensor& packed)>;

// A plan giving every decoder linear the same spec (the `uniform` allocation); the untied head
// too when `head` is set (the paper compresses the decoder layers only).
LinearPlan uniform_plan(const CompressSpec& spec, bool head = false);
// `plan` for the decoder linears, `head` for the untied lm_head (any policy's allocation plus a
// compressed head: `compress --head`).
LinearPlan with_head(LinearPlan plan, const CompressSpec& head);
// The head's spec under `compress --head`: the base's bits, group and scheme by RTN, dense. The
// head has no calibration stream of its own (sequential GPTQ/SparseGPT statistics are per layer),
// and the policies allocate the decoder linears only.
CompressSpec head_spec(const CompressSpec& base);

// The compressed checkpoint. Its compression record (Checkpoint::compression) holds `record`
// (policy, sensitivities, provenance: whatever the caller adds) plus, per compressed tensor, the
// spec it was compressed with and its report (weight MSE, output MSE when calibrated, bytes).
// drop_source_pages: src's tensors are a file mapping (Model::weights_mapped); each source matrix's
// pages are dropped once it is compressed, so the peak holds one of them, not the whole source.
Checkpoint compress_checkpoint(const Checkpoint& src, const LinearPlan& plan,
                               const LinearCalib& calib = {},
                               const nlohmann::json& record = nlohmann::json::object(),
                               const LinearDone& done = {}, bool drop_source_pages = false);

// compress_checkpoint, then save_hf_dir(dir) (unpacked matrices stored as `dense_dtype`).
void write_compressed_model(const Checkpoint& src, const LinearPlan& plan, const std::string& dir,
                            const LinearCalib& calib = {},
                            const nlohmann::json& record = nlohmann::json::object(),
                            DType dense_dtype = DType::F32);

// The spec as JSON (what the record stores per tensor).
nlohmann::json spec_json(const CompressSpec& s);

}  // namespace edgellm
