// Layer-by-layer streaming of calibration windows (shared by eval/sensitivity.cpp and
// eval/calibrated_compress.cpp): the hidden states of every window at one depth, a layer run
// over all of them with any candidate weights, and a tap observer that accumulates each
// linear's input statistics (CalibStats) on the way. Memory: two [Σ T_i, C] buffers, never a
// second model.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "compress/calib_stats.h"
#include "model/forward.h"
#include "model/layer.h"

namespace edgellm {

// Hidden states [Σ T_i, C] of every window, back to back.
struct HiddenStates {
  int64_t dim = 0;
  std::vector<int64_t> offset, len;  // per window, in rows
  std::vector<float> x;
  int64_t rows() const { return static_cast<int64_t>(x.size()) / (dim ? dim : 1); }
  float* window(size_t i) { return x.data() + offset[i] * dim; }
  const float* window(size_t i) const { return x.data() + offset[i] * dim; }
};

// The embeddings of every window (positions 0..T_i−1).
HiddenStates embed_windows(InferenceState& st, const std::vector<std::vector<int32_t>>& windows);

// Layer l with weights w on every window of `in`, each from an empty cache at position 0;
// out gets the layer outputs (same shape). `out` may not alias `in`.
void run_layer(InferenceState& st, int l, const LayerWeights& w, const HiddenStates& in,
               HiddenStates& out);

// Σ (a − b)² over all values, and the count.
double sum_sq_diff(const HiddenStates& a, const HiddenStates& b);

// Input statistics of every linear of one layer, from the taps of a forward of that layer.
// q/k/v share one CalibStats (same input), as do gate/up.
class LinearInputStats : public LayerTaps {
 public:
  LinearInputStats(const ModelConfig& c, int layer);
  void on(TapPoint p, int layer, const float* x, int64_t T, int64_t width) override;
  const CalibStats& of(LinearId t) const;

 private:
  int layer_;
  std::array<std::unique_ptr<CalibStats>, kTapPoints> stats_;
};

// "model.layers.{l}.self_attn.q_proj.weight" etc.
std::string linear_tensor_name(int l, LinearId t);
// The linear of a tensor name ("...mlp.down_proj.weight" -> Down); throws if none.
LinearId linear_of_tensor(const std::string& name);
// Mutable access to one linear's view (LayerWeights::linear is const).
WeightView& linear_view(LayerWeights& w, LinearId t);

}  // namespace edgellm
