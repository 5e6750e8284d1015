#include "compress/sensitivity.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace edgellm {

int64_t LayerSensitivity::params() const {
  int64_t n = 0;
  for (const auto& l : linears) n += l.rows * l.cols;
  return n;
}

bool SensitivityProfile::has_bits(int b) const {
  return b >= 16 || std::find(bits.begin(), bits.end(), b) != bits.end();
}

double SensitivityProfile::quant_at(int l, int b) const {
  if (b >= 16) return 0;
  for (size_t k = 0; k < bits.size(); ++k)
    if (bits[k] == b) return layers.at(static_cast<size_t>(l)).quant.at(k);
  fail(
      "[sensitivity] {}: bit-width {} was not profiled (profiled: {}); rerun profile with "
      "--bits including it",
      model, b, fmt::join(bits, ","));
}

namespace {

// A profiled sparsity curve at p: 0 at p = 0, piecewise linear through the points (p_k, s_k),
// the last segment extended past the last level, clamped at >= 0.
double interpolate_prune(const std::vector<double>& levels, const std::vector<double>& s,
                         double p) {
  if (p <= 0) return 0;
  double x0 = 0, y0 = 0;
  for (size_t k = 0; k < levels.size(); ++k) {
    const double x1 = levels[k], y1 = s.at(k);
    if (p <= x1 || k + 1 == levels.size())
      return std::max(0.0, y0 + (y1 - y0) * (p - x0) / (x1 - x0));
    x0 = x1, y0 = y1;
  }
  return 0;  // unreachable: the loop returns on its last segment
}

}  // namespace

double SensitivityProfile::prune_at(int l, double p) const {
  if (p <= 0) return 0;
  if (sparsity.empty())
    fail("[sensitivity] {}: no sparsity was profiled; rerun profile with --sparsity", model);
  return interpolate_prune(sparsity, layers.at(static_cast<size_t>(l)).prune, p);
}

double SensitivityProfile::linear_quant_at(int l, LinearId t, int b) const {
  if (b >= 16) return 0;
  if (!per_linear)
    fail(
        "[sensitivity] {}: no per-linear curves (profiled with --no-per-linear); rerun profile "
        "without it",
        model);
  for (size_t k = 0; k < bits.size(); ++k)
    if (bits[k] == b)
      return layers.at(static_cast<size_t>(l)).linears[static_cast<size_t>(t)].quant.at(k);
  return quant_at(l, b);  // throws naming the profiled bit-widths
}

double SensitivityProfile::linear_prune_at(int l, LinearId t, double p) const {
  if (p <= 0) return 0;
  if (!per_linear)
    fail(
        "[sensitivity] {}: no per-linear curves (profiled with --no-per-linear); rerun profile "
        "without it",
        model);
  if (sparsity.empty())
    fail("[sensitivity] {}: no sparsity was profiled; rerun profile with --sparsity", model);
  return interpolate_prune(
      sparsity, layers.at(static_cast<size_t>(l)).linears[static_cast<size_t>(t)].prune, p);
}

std::vector<double> SensitivityProfile::s_quant(int B) const {
  std::vector<double> s;
  for (int l = 0; l < n_layers(); ++l) s.push_back(quant_at(l, B));
  return s;
}

std::vector<double> SensitivityProfile::s_prune() const {
  if (sparsity.empty())
    fail("[sensitivity] {}: no sparsity was profiled; rerun profile with --sparsity", model);
  std::vector<double> s;
  for (const auto& L : layers) {
    double sum = 0;
    for (double v : L.prune) sum += v;
    s.push_back(sum / double(L.prune.size()));
  }
  return s;
}

nlohmann::json SensitivityProfile::to_json() const {
  nlohmann::json layers_j = nlohmann::json::array();
  for (size_t l = 0; l < layers.size(); ++l) {
    const LayerSensitivity& L = layers[l];
    nlohmann::json lin = nlohmann::json::object();
    for (int t = 0; t < kLinears; ++t) {
      const LinearSensitivity& s = L.linears[static_cast<size_t>(t)];
      nlohmann::json e = {{"rows", s.rows}, {"cols", s.cols}};
      if (per_linear) e["quant"] = s.quant, e["prune"] = s.prune;
      lin[linear_name(static_cast<LinearId>(t))] = e;
    }
    layers_j.push_back({{"layer", l},
                        {"params", L.params()},
                        {"output_ms", L.output_ms},
                        {"quant", L.quant},
                        {"prune", L.prune},
                        {"linears", lin}});
  }
  nlohmann::json j = {{"format", "edgellm-sensitivity"},
                      {"version", 1},
                      {"model", model},
                      {"metric",
                       "mean squared difference of the layer output (residual stream), layer "
                       "compressed alone on the dense model's hidden states"},
                      {"bits", bits},
                      {"quantizer", "rtn"},
                      {"scheme", scheme},
                      {"group", group},
                      {"sparsity", sparsity},
                      {"pruner", pruner},
                      {"per_linear", per_linear},
                      {"calibration", calibration},
                      {"layers", layers_j}};
  if (!sparsity.empty()) j["s_prune"] = s_prune();
  return j;
}

SensitivityProfile SensitivityProfile::from_json(const nlohmann::json& j, const std::string& what) {
  SensitivityProfile p;
  try {
    if (j.value("format", "") != "edgellm-sensitivity")
      fail("[sensitivity] {}: field 'format' is '{}', expected 'edgellm-sensitivity'", what,
           j.value("format", ""));
    if (j.at("version").get<int>() != 1)
      fail("[sensitivity] {}: version {} not supported (1)", what, j.at("version").get<int>());
    p.model = j.value("model", what);
    p.bits = j.at("bits").get<std::vector<int>>();
    p.sparsity = j.at("sparsity").get<std::vector<double>>();
    p.scheme = j.value("scheme", "sym");
    p.group = j.value("group", 0);
    p.pruner = j.value("pruner", "sparsegpt");
    p.per_linear = j.value("per_linear", false);
    p.calibration = j.value("calibration", nlohmann::json::object());
    for (size_t k = 0; k < p.sparsity.size(); ++k)
      if (!(p.sparsity[k] > 0 && p.sparsity[k] < 1) ||
          (k > 0 && p.sparsity[k] <= p.sparsity[k - 1]))
        fail("[sensitivity] {}: 'sparsity' must increase within (0, 1): {}", what,
             fmt::join(p.sparsity, ","));
    for (const auto& lj : j.at("layers")) {
      LayerSensitivity L;
      L.quant = lj.at("quant").get<std::vector<double>>();
      L.prune = lj.at("prune").get<std::vector<double>>();
      L.output_ms = lj.value("output_ms", 0.0);
      const size_t l = p.layers.size();
      if (lj.value("layer", -1) != static_cast<int>(l))
        fail("[sensitivity] {}: layers[{}] has 'layer' {}", what, l, lj.value("layer", -1));
      if (L.quant.size() != p.bits.size() || L.prune.size() != p.sparsity.size())
        fail(
            "[sensitivity] {}: layer {} has {} quant / {} prune values for {} bits / {} "
            "sparsities",
            what, l, L.quant.size(), L.prune.size(), p.bits.size(), p.sparsity.size());
      for (double v : L.quant)
        if (!(std::isfinite(v) && v >= 0)) fail("[sensitivity] {}: layer {} quant {}", what, l, v);
      for (double v : L.prune)
        if (!(std::isfinite(v) && v >= 0)) fail("[sensitivity] {}: layer {} prune {}", what, l, v);
      if (p.per_linear && !lj.contains("linears"))
        fail("[sensitivity] {}: layer {} has no 'linears' though 'per_linear' is true", what, l);
      if (lj.contains("linears"))
        for (int t = 0; t < kLinears; ++t) {
          const char* name = linear_name(static_cast<LinearId>(t));
          if (!lj["linears"].contains(name)) {
            if (p.per_linear)
              fail("[sensitivity] {}: layer {} has no 'linears.{}' though 'per_linear' is true",
                   what, l, name);
            continue;
          }
          const auto& e = lj["linears"][name];
          LinearSensitivity& s = L.linears[static_cast<size_t>(t)];
          s.rows = e.value("rows", int64_t{0});
          s.cols = e.value("cols", int64_t{0});
          if (p.per_linear) {
            s.quant = e.at("quant").get<std::vector<double>>();
            s.prune = e.at("prune").get<std::vector<double>>();
            // The per-linear budget indexes these like the layer's curves.
            if (s.quant.size() != p.bits.size() || s.prune.size() != p.sparsity.size())
              fail(
                  "[sensitivity] {}: layer {} {} has {} quant / {} prune values for {} bits / {} "
                  "sparsities",
                  what, l, name, s.quant.size(), s.prune.size(), p.bits.size(), p.sparsity.size());
            for (const auto* curve : {&s.quant, &s.prune})
              for (double v : *curve)
                if (!(std::isfinite(v) && v >= 0))
                  fail("[sensitivity] {}: layer {} {} value {}", what, l, name, v);
          }
        }
      p.layers.push_back(std::move(L));
    }
  } catch (const nlohmann::json::exception& e) {
    fail("[sensitivity] {}: {}", what, e.what());
  }
  if (p.layers.empty()) fail("[sensitivity] {}: no layers", what);
  return p;
}

}  // namespace edgellm
