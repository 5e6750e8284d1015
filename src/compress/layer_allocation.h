// From a policy (policy.h, budget.h) and a measured profile (sensitivity.h) to what each decoder
// linear is compressed with: the allocation of `edgellm compress --policy ...`, per layer or per
// linear, priced exactly (packed_bytes of every linear) before anything is compressed.
//
//   luc | luc-literal | official | random   policy.h on s_quant = profile at B, s_prune = the
//                                          profile's mean over its sparsity levels; luc's bits
//                                          are capped at 8 (B = 8 has no 9-bit format).
//   uniform                                 B and P everywhere (no profile needed).
//   budget, granularity "layer"             per layer one (bits, sparsity) from {profiled bits,
//                                          16} × {0, profiled sparsities} plus the luc pair of
//                                          that layer, minimising Σ predicted sensitivity with
//                                          stored bytes <= target (default: luc's own bytes).
//                                          Predicted sensitivity of a pair = s_quant(b) +
//                                          s_prune(p) (additive: the profile measures the two
//                                          apart; see docs/compression.md for where that errs).
//   budget, granularity "linear"            the same choices per linear (7·L knapsack items),
//                                          each priced with its own exact bytes and valued on
//                                          its own measured curves (sens.json "linears": only
//                                          that linear compressed). Every per-layer allocation
//                                          is one of its choices, so at equal target its summed
//                                          per-linear sensitivity is <= the per-layer budget's
//                                          (exact while the knapsack is, budget.h).
//   file                                   {"layers": [{"bits": b, "sparsity": p, "linears":
//                                          {"down_proj": {"bits": b2}}}, ...], "linears":
//                                          {"layers.3.mlp.down_proj": {"bits": b, "sparsity": p}}}
//                                          (both keys optional; a linear's values default to its
//                                          layer's, a layer's to 16 bits and no sparsity, i.e.
//                                          kept as stored; the top-level "linears" win).
#pragma once

#include <array>
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
  uint64_t seed = 0;         // random
  double target_bpw = 0;     // budget: bits per weight of the decoder linears (0: luc's size)
  int64_t target_bytes = 0;  // budget: stored bytes of the decoder linears (wins over bpw)
  // budget: "layer" (one choice per layer) | "linear" (one per linear; needs per-linear curves)
  std::string granularity = "layer";
  nlohmann::json file;                          // policy file: the allocation JSON
  std::string file_source = "allocation file";  // its name, for errors
  CompressSpec base;                            // quantizer, pruner, scheme, group of every linear
};

// What one linear is compressed with: bits 2..8, or 16 = fp16 values (no quantization);
// sparsity in [0, 1) (0 = no pruning). (16, 0) keeps the linear as stored.
struct LinearChoice {
  int bits = 16;
  double sparsity = 0;
  bool operator==(const LinearChoice&) const = default;
};
using LayerChoice = std::array<LinearChoice, kLinears>;  // indexed by LinearId

struct LayerAllocation {
  std::string policy;
  std::string granularity = "layer";  // "linear": chosen per linear (budget), or a per-linear file
  std::vector<LayerChoice> linears;   // [L][7]: what each decoder linear is compressed with
  std::vector<int> infeasible;        // luc-literal: layers with p_j > 1
  std::vector<int64_t> predicted_bytes;  // [L] exact stored bytes of the layer's linears
  // [L] on the layer curves, s_quant(b_j) + s_prune(p_j) (profile only; NaN where the layer's
  // linears differ or the bit-width was not profiled).
  std::vector<double> predicted_sensitivity;
  // [L] on the per-linear curves, Σ_t s_quant,t(b_t) + s_prune,t(p_t) (per-linear profile only):
  // what the per-linear budget minimises, and the common measure of both granularities.
  std::vector<double> predicted_linear_sensitivity;
  int64_t target_bytes = 0;  // budget
  bool budget_exact = true;
  bool relative = false;  // sensitivities were divided by output_ms

  // Layer l's choice when its seven linears share one (every per-layer policy), else nullopt.
  std::optional<LinearChoice> layer_choice(int l) const;
  // Parameter-weighted means over layer l's linears (the layer's own values when they share one).
  double mean_bits(const ModelConfig& c, int l) const;
  double mean_sparsity(const ModelConfig& c, int l) const;
  // The record: "bits"/"sparsity" per layer (the shared value, or the parameter-weighted mean
  // where a layer's linears differ), and "linears" [L]{name: {"bits", "sparsity"}} when any do.
  nlohmann::json to_json(const ModelConfig& c) const;
};

// The spec of one linear allocated (bits, p): nullopt when b = 16 and p = 0 (kept as stored);
// bits 16 implies no quantizer, p = 0 no pruner.
std::optional<CompressSpec> layer_spec(const CompressSpec& base, int bits, double p);
// Exact stored bytes of one rows×cols linear compressed with `spec` (what pack() stores: sparse
// only where smaller), or kept as stored (nullopt) priced at `dense_bytes_per_weight`.
int64_t linear_bytes(int64_t rows, int64_t cols, const std::optional<CompressSpec>& spec,
                     double dense_bytes_per_weight = 2);
// The same summed over one layer's seven linears, all compressed with `spec`.
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
