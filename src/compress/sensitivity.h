// A measured sensitivity profile (what `edgellm profile` writes as sens.json and what the `luc`,
// `random`, `official`, `luc-literal` and `budget` policies read). Pure data + JSON; measuring
// it needs the model forward and lives in eval/sensitivity.h.
//
// Sensitivity of layer j to a candidate = mean over calibration tokens and channels of
// (y_c − y_d)², where y_d is the residual stream leaving layer j dense and y_c the same with
// layer j's weights compressed alone, both fed the hidden states that enter layer j in the dense
// model (PAPER.md §1). Candidates: RTN at each profiled bit-width (all seven linears), the pruner
// at each profiled sparsity (fp16 values), and the same per linear (only that linear
// compressed). The JSON schema is documented in docs/compression.md ("sens.json").
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/config.h"

namespace edgellm {

struct LinearSensitivity {
  int64_t rows = 0, cols = 0;
  std::vector<double> quant, prune;  // [bits], [sparsity]; empty when not profiled per linear
};

struct LayerSensitivity {
  std::vector<double> quant;  // [bits]: all linears RTN at bits[k]
  std::vector<double> prune;  // [sparsity]: all linears pruned at sparsity[k]
  std::array<LinearSensitivity, kLinears> linears;
  double output_ms = 0;  // mean square of the dense layer output (scale of the numbers above)
  int64_t params() const;
};

struct SensitivityProfile {
  std::string model;
  std::vector<int> bits;
  std::vector<double> sparsity;
  std::string scheme = "sym";  // RTN grid of the quantization candidates
  int group = 0;
  std::string pruner = "sparsegpt";
  bool per_linear = false;
  nlohmann::json calibration = nlohmann::json::object();  // provenance of the windows
  std::vector<LayerSensitivity> layers;

  int n_layers() const { return static_cast<int>(layers.size()); }
  // Sensitivity of layer l to `bits` (16: 0). Throws unless `bits` was profiled.
  double quant_at(int l, int bits) const;
  bool has_bits(int b) const;  // 16 or profiled
  // Sensitivity of layer l to sparsity p: 0 at p = 0, piecewise linear through the profiled
  // levels, linear extrapolation past the last two (clamped at >= 0).
  double prune_at(int l, double p) const;
  std::vector<double> s_quant(int B) const;  // [L] quant_at(l, B)
  // The same per linear (only linear t of layer l compressed); throw unless per_linear.
  double linear_quant_at(int l, LinearId t, int bits) const;
  double linear_prune_at(int l, LinearId t, double p) const;
  // [L] the mean over the profiled sparsity levels (the official code averages its levels).
  std::vector<double> s_prune() const;

  nlohmann::json to_json() const;
  // Throws naming `what` (the file) and the field on anything missing or inconsistent.
  static SensitivityProfile from_json(const nlohmann::json& j, const std::string& what);
};

}  // namespace edgellm
