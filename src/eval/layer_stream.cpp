#include "eval/layer_stream.h"

#include <fmt/format.h>

#include <cstring>

#include "util/error.h"

namespace edgellm {

HiddenStates embed_windows(InferenceState& st, const std::vector<std::vector<int32_t>>& windows) {
  HiddenStates h;
  h.dim = st.model().config().dim;
  int64_t rows = 0;
  for (const auto& w : windows) {
    if (w.empty()) fail("[calibration] an empty calibration window");
    if (static_cast<int64_t>(w.size()) > st.max_seq())
      fail("[calibration] a window of {} tokens exceeds the context of {}", w.size(), st.max_seq());
    h.offset.push_back(rows);
    h.len.push_back(static_cast<int64_t>(w.size()));
    rows += static_cast<int64_t>(w.size());
  }
  h.x.resize(static_cast<size_t>(rows * h.dim));
  for (size_t i = 0; i < windows.size(); ++i) st.embed(windows[i].data(), h.len[i], h.window(i));
  return h;
}

void run_layer(InferenceState& st, int l, const LayerWeights& w, const HiddenStates& in,
               HiddenStates& out) {
  EDGELLM_CHECK(&in != &out, "run_layer: out aliases in");
  out.dim = in.dim;
  out.offset = in.offset;
  out.len = in.len;
  out.x.resize(in.x.size());
  for (size_t i = 0; i < in.len.size(); ++i) {
    float* y = out.window(i);
    std::memcpy(y, in.window(i), static_cast<size_t>(in.len[i] * in.dim) * sizeof(float));
    st.layer_forward(l, y, in.len[i], 0, &w);
  }
}

double sum_sq_diff(const HiddenStates& a, const HiddenStates& b) {
  EDGELLM_CHECK(a.x.size() == b.x.size(), "sum_sq_diff: {} vs {} values", a.x.size(), b.x.size());
  double s = 0;
  for (size_t i = 0; i < a.x.size(); ++i) {
    const double d = double(a.x[i]) - double(b.x[i]);
    s += d * d;
  }
  return s;
}

LinearInputStats::LinearInputStats(const ModelConfig& c, int layer) : layer_(layer) {
  for (int t = 0; t < kLinears; ++t) {
    const int p = static_cast<int>(tap_of_linear(static_cast<LinearId>(t)));
    if (!stats_[p]) stats_[p] = std::make_unique<CalibStats>(c.linear_in(static_cast<LinearId>(t)));
  }
}

void LinearInputStats::on(TapPoint p, int layer, const float* x, int64_t T, int64_t width) {
  if (layer != layer_) return;
  auto& s = stats_[static_cast<int>(p)];
  if (!s) return;  // layer input/output: not the input of a linear
  EDGELLM_CHECK(s->in() == width, "tap {} width {} vs {}", tap_name(p), width, s->in());
  s->add(x, T);
}

const CalibStats& LinearInputStats::of(LinearId t) const {
  return *stats_[static_cast<int>(tap_of_linear(t))];
}

std::string linear_tensor_name(int l, LinearId t) {
  const bool attn = t == LinearId::Q || t == LinearId::K || t == LinearId::V || t == LinearId::O;
  return fmt::format("model.layers.{}.{}.{}.weight", l, attn ? "self_attn" : "mlp", linear_name(t));
}

LinearId linear_of_tensor(const std::string& name) {
  for (int t = 0; t < kLinears; ++t) {
    const std::string k = std::string(".") + linear_name(static_cast<LinearId>(t)) + ".";
    if (name.find(k) != std::string::npos) return static_cast<LinearId>(t);
  }
  fail("[compress] tensor '{}' is not a decoder linear", name);
}

WeightView& linear_view(LayerWeights& w, LinearId t) {
  WeightView* v[kLinears] = {&w.wq, &w.wk, &w.wv, &w.wo, &w.w_gate, &w.w_up, &w.w_down};
  return *v[static_cast<int>(t)];
}

}  // namespace edgellm
