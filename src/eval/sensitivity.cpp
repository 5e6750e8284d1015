#include "eval/sensitivity.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <optional>

#include "eval/layer_stream.h"
#include "io/tensor_set.h"
#include "model/forward.h"
#include "report/svg_plot.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {

namespace {

void check_options(const ProfileOptions& o) {
  for (int b : o.bits)
    if (b < 2 || b > 8) fail("[profile] --bits {}: expected 2..8", b);
  for (size_t k = 0; k < o.sparsity.size(); ++k)
    if (!(o.sparsity[k] > 0 && o.sparsity[k] < 1) || (k > 0 && o.sparsity[k] <= o.sparsity[k - 1]))
      fail("[profile] --sparsity {}: expected increasing values in (0, 1)", o.sparsity[k]);
  if (o.bits.empty() && o.sparsity.empty())
    fail("[profile] nothing to profile: no bits, no sparsity");
  if (!o.sparsity.empty() && o.pruner == Pruner::None)
    fail("[profile] --sparsity given but --pruner none");
}

}  // namespace

SensitivityProfile profile_sensitivity(const Model& m,
                                       const std::vector<std::vector<int32_t>>& windows,
                                       const ProfileOptions& o) {
  check_options(o);
  if (windows.empty()) fail("[profile] no calibration windows");
  const ModelConfig& c = m.config();
  const Checkpoint& ck = m.checkpoint();
  int64_t max_len = 0;
  for (const auto& w : windows)
    max_len = std::max<int64_t>(max_len, static_cast<int64_t>(w.size()));
  InferenceState st(m, max_len);

  SensitivityProfile prof;
  prof.model = ck.path;
  prof.bits = o.bits;
  prof.sparsity = o.sparsity;
  prof.scheme = quant_scheme_name(o.scheme);
  prof.group = o.group;
  prof.pruner = pruner_name(o.pruner);
  prof.per_linear = o.per_linear;

  // Candidate specs: RTN at each bit-width, then the pruner at each sparsity (fp16 values).
  std::vector<CompressSpec> cands;
  for (int b : o.bits) {
    CompressSpec s;
    s.bits = b;
    s.group = o.group;
    s.scheme = o.scheme;
    cands.push_back(s);
  }
  for (double p : o.sparsity) {
    CompressSpec s;
    s.bits = 16;
    s.pruner = o.pruner;
    s.sparsity.p = p;
    s.sparse_storage = false;  // only Ŵ is used here
    cands.push_back(s);
  }
  const bool need_stats = !o.sparsity.empty() && o.pruner != Pruner::Magnitude;

  HiddenStates x = embed_windows(st, windows), y, yc;
  const double n_values = double(x.x.size());
  std::array<std::vector<float>, kLinears> w, w_hat;
  for (int l = 0; l < c.n_layers; ++l) {
    LayerSensitivity L;
    // Dense pass: the reference output, and the linears' input statistics on the way.
    // Only Wanda and SparseGPT read them: RTN and magnitude candidates skip the [in, in]
    // statistics (1.4 GB per layer at the 7B shape).
    std::optional<LinearInputStats> stats;
    if (need_stats) stats.emplace(c, l);
    st.set_taps(stats ? &*stats : nullptr);
    run_layer(st, l, m.layer(l), x, y);
    st.set_taps(nullptr);
    double ms = 0;
    for (float v : y.x) ms += double(v) * double(v);
    L.output_ms = ms / n_values;
    for (int t = 0; t < kLinears; ++t) {
      const LinearId id = static_cast<LinearId>(t);
      const Tensor& tw = ck.tensors.get(linear_tensor_name(l, id), ck.path);
      const int64_t rows = tw.shape[0], cols = tw.shape[1];
      w[t].resize(static_cast<size_t>(rows * cols));
      for (int64_t r = 0; r < rows; ++r) decode_tensor_row(tw, r, w[t].data() + r * cols);
      L.linears[t].rows = rows;
      L.linears[t].cols = cols;
    }
    for (size_t k = 0; k < cands.size(); ++k) {
      const bool is_quant = k < o.bits.size();
      LayerWeights all = m.layer(l);
      for (int t = 0; t < kLinears; ++t) {
        const LinearId id = static_cast<LinearId>(t);
        const int64_t rows = L.linears[t].rows, cols = L.linears[t].cols;
        const CalibStats* cs = stats && !is_quant ? &stats->of(id) : nullptr;
        w_hat[t].resize(static_cast<size_t>(rows * cols));  // same shapes every layer: reused
        compress_codes(w[t].data(), rows, cols, cands[k], cs).dequantize_into(w_hat[t].data());
        linear_view(all, id) = WeightView::f32(w_hat[t].data(), rows, cols);
      }
      run_layer(st, l, all, x, yc);
      const double s = sum_sq_diff(yc, y) / n_values;
      (is_quant ? L.quant : L.prune).push_back(s);
      if (!o.per_linear) continue;
      for (int t = 0; t < kLinears; ++t) {
        const LinearId id = static_cast<LinearId>(t);
        LayerWeights one = m.layer(l);
        linear_view(one, id) = linear_view(all, id);
        run_layer(st, l, one, x, yc);
        (is_quant ? L.linears[t].quant : L.linears[t].prune)
            .push_back(sum_sq_diff(yc, y) / n_values);
      }
    }
    prof.layers.push_back(std::move(L));
    // Layer l's weights are not read again: un-map them (mapped models only: on a copy this
    // would push live memory to swap), so the peak holds one layer of the model.
    for (int t = 0; m.weights_mapped() && t < kLinears; ++t) {
      const Tensor& tw = ck.tensors.get(linear_tensor_name(l, static_cast<LinearId>(t)), ck.path);
      drop_resident_pages(tw.data, tw.nbytes);
    }
    std::swap(x, y);  // the dense output enters the next layer
    if (o.progress) o.progress(l + 1, c.n_layers);
  }
  return prof;
}

std::string sensitivity_svg(const SensitivityProfile& p) {
  using report::LineChart;
  using report::Series;
  std::vector<report::Chart> charts;
  auto layer_axis = [&](LineChart& ch) {
    for (int l = 0; l < p.n_layers(); ++l) {
      ch.x_tick_values.push_back(l);
      ch.x_tick_labels.push_back(std::to_string(l));
    }
  };
  if (!p.bits.empty()) {
    LineChart q;
    q.title = fmt::format("quantization (RTN {}{})", p.scheme,
                          p.group ? fmt::format(" g{}", p.group) : std::string(" per row"));
    q.x_label = "layer";
    q.y_label = "output MSE";
    q.log_y = true;
    layer_axis(q);
    for (size_t k = 0; k < p.bits.size(); ++k) {
      Series s;
      s.name = fmt::format("{}-bit", p.bits[k]);
      for (int l = 0; l < p.n_layers(); ++l) s.x.push_back(l), s.y.push_back(p.layers[l].quant[k]);
      q.series.push_back(s);
    }
    charts.push_back(q);
  }
  if (!p.sparsity.empty()) {
    LineChart r;
    r.title = fmt::format("pruning ({})", p.pruner);
    r.x_label = "layer";
    r.y_label = "output MSE";
    r.log_y = true;
    layer_axis(r);
    for (size_t k = 0; k < p.sparsity.size(); ++k) {
      Series s;
      s.name = fmt::format("{:.0f}% sparse", 100 * p.sparsity[k]);
      for (int l = 0; l < p.n_layers(); ++l) s.x.push_back(l), s.y.push_back(p.layers[l].prune[k]);
      r.series.push_back(s);
    }
    charts.push_back(r);
  }
  return report::render_panels_svg("layer sensitivity: " + p.model, charts,
                                   static_cast<int>(charts.size()));
}

}  // namespace edgellm
