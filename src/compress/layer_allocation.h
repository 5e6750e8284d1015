// From a policy (policy.h, budget.h) and a measured profile (sensitivity.h) to what each decoder
// linear is compressed with: the per-layer allocation of `edgellm compress --policy ...`, priced
// exactly (packed_bytes of every linear) before anything is compressed.
//
//   luc | luc-literal | official | random   policy.h on s_quant = profile at B, s_prune = the
//                                          profile's mean over its sparsity levels; luc's bits
//                                          are capped at 8 (B = 8 has no 9-bit format).
//   uniform                                 B and P everywhere (no profile needed).
//   budget                                  per layer one (bits, sparsity) from {profiled bits,
//                                          16} × {0, profiled sparsities} plus the luc pair of
//                                          that layer, minimising Σ predicted sensitivity with
//                                          stored bytes <= target (default: luc's own bytes).
//                                          Predicted sensitivity of a pair = s_quant(b) +
//                                          s_prune(p) (additive: the profile measures the two
//                                          apart; see docs/compression.md for where that errs).
//   file                                   {"layers": [{"bits": b, "sparsity": p}, ...]}.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "compress/compress_linear.h"
#include "compress/compress_model.h"
#include "compress/sensitivity.h"
#include "model/config.h"

namespace edgellm {

struct LayerAllocOptions {
  std::string policy = "luc";
  int B = 4;       // base bits (16 = no quantization)
  double P = 0.5;  // mean sparsity
  double p_min = 0.0, p_max = 0.95;
  bool weighted = false;  // mean sparsity weighted by each layer's parameter count
  // Divide each layer's sensitivities by the mean square of its dense output (relative error):
  // the absolute MSE grows with the residual stream, i.e. with depth (docs/compression.md).
  bool relative = false;
  uint64_t seed = 0;      // random
  double target_bpw = 0;  // budget: bits per weight of the decoder linears (0: luc's size)
  nlohmann::json file;    // policy file: the allocation JSON
  CompressSpec base;      // quantizer, pruner, scheme, group of every linear
};

struct LayerAllocation {
  std::string policy;
  std::vector<int> bits;                      // [L]
  std::vector<double> sparsity;               // [L]
  std::vector<int> infeasible;                // luc-literal: layers with p_j > 1
  std::vector<int64_t> predicted_bytes;       // [L] exact stored bytes of the layer's linears
  std::vector<double> predicted_sensitivity;  // [L] s_quant(b_j) + s_prune(p_j) (profile only)
  int64_t target_bytes = 0;                   // budget
  bool budget_exact = true;
  bool relative = false;  // sensitivities were divided by output_ms
  nlohmann::json to_json() const;
};

// The spec of one linear in a layer allocated (bits, p): nullopt when b = 16 and p = 0
// (kept as stored); bits 16 implies no quantizer, p = 0 no pruner.
std::optional<CompressSpec> layer_spec(const CompressSpec& base, int bits, double p);
// Exact stored bytes of one layer's seven linears compressed with `spec` (nullopt: kept as
// stored, priced at `dense_bytes_per_weight`).
int64_t layer_linear_bytes(const ModelConfig& c, const std::optional<CompressSpec>& spec,
                           double dense_bytes_per_weight = 2);
int64_t decoder_linear_params(const ModelConfig& c);

// The profile with every layer's values divided by its output_ms (relative sensitivity).
SensitivityProfile relative_profile(const SensitivityProfile& p);
// prof may be null for uniform and file.
LayerAllocation allocate_layers(const ModelConfig& c, const SensitivityProfile* prof,
                                const LayerAllocOptions& o);
// The per-linear plan compress_checkpoint runs.
LinearPlan allocation_plan(const LayerAllocation& a, const CompressSpec& base);

}  // namespace edgellm
