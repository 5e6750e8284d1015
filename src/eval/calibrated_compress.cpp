#include "eval/calibrated_compress.h"

#include <algorithm>
#include <memory>

#include "eval/layer_stream.h"
#include "model/forward.h"
#include "util/error.h"

namespace edgellm {

Checkpoint compress_model_calibrated(const Model& m,
                                     const std::vector<std::vector<int32_t>>& windows,
                                     const LinearPlan& plan, const nlohmann::json& record,
                                     const LinearDone& done) {
  if (windows.empty()) fail("[compress] calibrated compression without calibration windows");
  const ModelConfig& c = m.config();
  int64_t max_len = 0;
  for (const auto& w : windows)
    max_len = std::max<int64_t>(max_len, static_cast<int64_t>(w.size()));
  InferenceState st(m, max_len);
  HiddenStates x, y;
  bool embedded = false;
  int cur = -1;  // layer whose statistics `stats` holds; x = that layer's (compressed) input
  std::unique_ptr<LinearInputStats> stats;
  // The weights each layer runs with once compressed: the model's, with every linear that has
  // been packed replaced by its packed tensor (kept alive in `packed`).
  std::vector<LayerWeights> comp;
  for (int l = 0; l < c.n_layers; ++l) comp.push_back(m.layer(l));
  std::vector<Tensor> packed;
  packed.reserve(static_cast<size_t>(c.n_layers * kLinears));

  auto advance_to = [&](int l) {
    if (!embedded) {
      x = embed_windows(st, windows);
      embedded = true;
      cur = 0;
      stats.reset();
    }
    EDGELLM_CHECK(l >= cur, "calibration asked for layer {} after layer {}", l, cur);
    // Layers cur..l−1 are final: run them compressed.
    for (; cur < l; ++cur) {
      run_layer(st, cur, comp[cur], x, y);
      std::swap(x, y);
      stats.reset();
    }
    if (!stats) {
      stats = std::make_unique<LinearInputStats>(c, l);
      st.set_taps(stats.get());
      run_layer(st, l, m.layer(l), x, y);  // dense layer l on the compressed prefix's output
      st.set_taps(nullptr);
    }
  };

  LinearCalib calib = [&](const TensorSpec& s) -> const CalibStats* {
    if (s.role != TensorRole::Linear) return nullptr;
    const std::optional<CompressSpec> spec = plan(s);
    if (!spec || !(spec->needs_hessian() || spec->pruner == Pruner::Wanda)) return nullptr;
    advance_to(s.layer);
    return &stats->of(linear_of_tensor(s.name));
  };
  LinearDone on_done = [&](const TensorSpec& s, const CompressReport& r, const Tensor& t) {
    if (s.role == TensorRole::Linear) {
      packed.push_back(t);
      linear_view(comp[s.layer], linear_of_tensor(s.name)) = weight_view(packed.back());
    }
    if (done) done(s, r, t);
  };
  nlohmann::json rec = record.is_object() ? record : nlohmann::json::object();
  rec["sequential"] = true;
  return compress_checkpoint(m.checkpoint(), plan, calib, rec, on_done, m.weights_mapped());
}

}  // namespace edgellm
