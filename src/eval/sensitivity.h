// Measuring per-layer (and per-linear) sensitivity, PAPER.md §1: for each layer j, the hidden
// states entering layer j in the DENSE model go through layer j dense and through layer j with
// candidate compressed weights (alone); sensitivity = mean squared difference of the layer
// outputs. Streams layer by layer (hidden states of the calibration windows at one depth; one
// layer's dense and candidate weights in fp32), never a second model. The result is
// compress/sensitivity.h's SensitivityProfile (sens.json).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "compress/compress_linear.h"
#include "compress/sensitivity.h"
#include "model/model.h"

namespace edgellm {

struct ProfileOptions {
  std::vector<int> bits{3, 4, 5, 8};                 // RTN candidates (2..8)
  std::vector<double> sparsity{0.1, 0.3, 0.5, 0.7};  // pruner candidates, increasing in (0, 1)
  QuantScheme scheme = QuantScheme::Sym;
  int group = 0;
  Pruner pruner = Pruner::SparseGpt;
  bool per_linear = true;  // also each linear compressed alone (7× the layer runs)
  // After each layer: (layers done so far, 1-based, n_layers).
  std::function<void(int done, int n_layers)> progress;
};

SensitivityProfile profile_sensitivity(const Model& m,
                                       const std::vector<std::vector<int32_t>>& windows,
                                       const ProfileOptions& o);

// The paper's Fig. 3: sensitivity per layer, one curve per bit-width (left) and per sparsity
// (right), log scale.
std::string sensitivity_svg(const SensitivityProfile& p);

}  // namespace edgellm
