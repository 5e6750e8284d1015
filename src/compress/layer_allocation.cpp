#include "compress/layer_allocation.h"

#include <algorithm>
#include <cmath>

#include "compress/budget.h"
#include "compress/policy.h"
#include "compress/prune.h"
#include "packed/packed_weight.h"
#include "util/error.h"

namespace edgellm {

nlohmann::json LayerAllocation::to_json() const {
  nlohmann::json j = {{"name", policy},
                      {"bits", bits},
                      {"sparsity", sparsity},
                      {"infeasible", infeasible},
                      {"predicted_bytes", predicted_bytes}};
  if (!predicted_sensitivity.empty()) j["predicted_sensitivity"] = predicted_sensitivity;
  if (policy == "budget") j["target_bytes"] = target_bytes, j["budget_exact"] = budget_exact;
  j["relative"] = relative;
  return j;
}

std::optional<CompressSpec> layer_spec(const CompressSpec& base, int bits, double p) {
  if (bits >= 16 && p <= 0) return std::nullopt;
  CompressSpec s = base;
  s.bits = bits;
  if (bits >= 16) {
    s.bits = 16;
    s.quantizer = Quantizer::Rtn;  // nothing to quantize: values kept in fp16
    s.act_order = false;
  }
  s.sparsity = SparsitySpec{};
  s.sparsity.p = p;
  if (p <= 0)
    s.pruner = Pruner::None;
  else if (s.pruner == Pruner::None)
    s.pruner = Pruner::Magnitude;
  return s;
}

int64_t decoder_linear_params(const ModelConfig& c) {
  int64_t n = 0;
  for (int t = 0; t < kLinears; ++t)
    n += c.linear_out(static_cast<LinearId>(t)) * c.linear_in(static_cast<LinearId>(t));
  return n * c.n_layers;
}

int64_t layer_linear_bytes(const ModelConfig& c, const std::optional<CompressSpec>& spec,
                           double dense_bytes_per_weight) {
  // nullopt (kept as stored) is priced at dense_bytes_per_weight.
  int64_t total = 0;
  for (int t = 0; t < kLinears; ++t) {
    const int64_t rows = c.linear_out(static_cast<LinearId>(t));
    const int64_t cols = c.linear_in(static_cast<LinearId>(t));
    if (!spec) {
      total += static_cast<int64_t>(std::llround(double(rows * cols) * dense_bytes_per_weight));
      continue;
    }
    // What pack() does: sparse storage only where it is smaller than dense.
    WeightFormat f = spec->format();
    const int64_t nnz = rows * (cols - pruned_per_row(spec->sparsity.p, cols));
    int64_t b = static_cast<int64_t>(packed_bytes(f, rows, cols, nnz).total());
    if (f.sparse != SparseFormat::None) {
      WeightFormat d = f;
      d.sparse = SparseFormat::None;
      d.nm_n = d.nm_m = 0;
      b = std::min(b, static_cast<int64_t>(packed_bytes(d, rows, cols, rows * cols).total()));
    }
    total += b;
  }
  return total;
}

namespace {

void price(const ModelConfig& c, const SensitivityProfile* prof, const CompressSpec& base,
           LayerAllocation& a) {
  const int L = c.n_layers;
  a.predicted_bytes.assign(static_cast<size_t>(L), 0);
  if (prof) a.predicted_sensitivity.assign(static_cast<size_t>(L), 0);
  for (int l = 0; l < L; ++l) {
    a.predicted_bytes[l] = layer_linear_bytes(c, layer_spec(base, a.bits[l], a.sparsity[l]));
    // NaN where the bit-width was not profiled (e.g. luc's B + 1 when only B was).
    if (prof)
      a.predicted_sensitivity[l] = prof->has_bits(a.bits[l]) ? prof->quant_at(l, a.bits[l]) +
                                                                   prof->prune_at(l, a.sparsity[l])
                                                             : std::nan("");
  }
}

LayerAllocation from_file(const ModelConfig& c, const nlohmann::json& j) {
  LayerAllocation a;
  a.policy = "file";
  if (!j.is_object() || !j.contains("layers") || !j["layers"].is_array())
    fail(
        "[policy] allocation file: expected {{\"layers\": [{{\"bits\": b, \"sparsity\": p}}, "
        "...]}}");
  if (static_cast<int>(j["layers"].size()) != c.n_layers)
    fail("[policy] allocation file: {} layers given, the model has {}", j["layers"].size(),
         c.n_layers);
  for (const auto& e : j["layers"]) {
    a.bits.push_back(e.value("bits", 16));
    a.sparsity.push_back(e.value("sparsity", 0.0));
  }
  return a;
}

}  // namespace

SensitivityProfile relative_profile(const SensitivityProfile& p) {
  SensitivityProfile r = p;
  for (size_t l = 0; l < r.layers.size(); ++l) {
    LayerSensitivity& L = r.layers[l];
    if (!(L.output_ms > 0))
      fail("[policy] relative sensitivity: layer {} has output_ms {} (profile too old?)", l,
           L.output_ms);
    auto scale = [&](std::vector<double>& v) {
      for (double& x : v) x /= L.output_ms;
    };
    scale(L.quant);
    scale(L.prune);
    for (auto& lin : L.linears) scale(lin.quant), scale(lin.prune);
  }
  return r;
}

LayerAllocation allocate_layers(const ModelConfig& c, const SensitivityProfile* prof_in,
                                const LayerAllocOptions& o) {
  const int L = c.n_layers;
  std::optional<SensitivityProfile> rel;
  if (prof_in && o.relative) rel = relative_profile(*prof_in);
  const SensitivityProfile* prof = rel ? &*rel : prof_in;
  if (prof && prof->n_layers() != L)
    fail("[policy] the sensitivity profile has {} layers, the model {}", prof->n_layers(), L);
  LayerAllocation a;
  if (o.policy == "file") {
    a = from_file(c, o.file);
  } else if (o.policy == "uniform") {
    a.policy = "uniform";
    a.bits.assign(static_cast<size_t>(L), o.B);
    a.sparsity.assign(static_cast<size_t>(L), o.P);
  } else {
    if (!prof) fail("[policy] --policy {} needs a sensitivity profile", o.policy);
    PolicyInputs in;
    in.B = o.B;
    in.P = o.P;
    in.p_min = o.p_min;
    in.p_max = o.p_max;
    in.seed = o.seed;
    // B = 16 (pruning only): every layer at 16 bits, no quantization sensitivity needed.
    in.s_quant = o.B >= 16 ? std::vector<double>(static_cast<size_t>(L), 0.0) : prof->s_quant(o.B);
    in.s_prune = o.P > 0 ? prof->s_prune() : std::vector<double>(static_cast<size_t>(L), 1.0);
    if (o.weighted)
      for (int l = 0; l < L; ++l) in.weights.push_back(double(prof->layers[l].params()));
    const std::string base_policy = o.policy == "budget" ? "luc" : o.policy;
    const Allocation al = allocate(base_policy, in);
    a.policy = base_policy;
    a.bits = al.bits;
    a.sparsity = al.sparsity;
    a.infeasible = al.infeasible;
    for (int& b : a.bits) b = o.B >= 16 ? 16 : std::min(b, 8);
    if (o.P <= 0) std::fill(a.sparsity.begin(), a.sparsity.end(), 0.0);
  }
  for (int l = 0; l < L; ++l) {
    const int b = a.bits[l];
    const double p = a.sparsity[l];
    if (!((b >= 2 && b <= 8) || b == 16))
      fail("[policy] {}: layer {} bits {} (expected 2..8 or 16)", a.policy, l, b);
    if (!(p >= 0 && p < 1))
      fail("[policy] {}: layer {} sparsity {} outside [0, 1){}", a.policy, l, p,
           a.policy == "luc-literal" ? " (Eq. 2 as printed is infeasible here)" : "");
  }
  a.relative = o.relative;
  price(c, prof, o.base, a);
  if (o.policy != "budget") return a;

  // Budget: a multiple-choice knapsack per layer, the luc pair among each layer's choices so the
  // optimum can never be worse than luc at luc's size under the additive model.
  const int64_t luc_bytes = [&] {
    int64_t s = 0;
    for (int64_t b : a.predicted_bytes) s += b;
    return s;
  }();
  const int64_t target =
      o.target_bpw > 0
          ? static_cast<int64_t>(std::floor(o.target_bpw * double(decoder_linear_params(c)) / 8.0))
          : luc_bytes;
  std::vector<int> bit_choices = prof->bits;
  bit_choices.push_back(16);
  std::vector<double> p_choices{0.0};
  for (double p : prof->sparsity)
    if (p <= o.p_max) p_choices.push_back(p);
  std::vector<std::vector<BudgetChoice>> items(static_cast<size_t>(L));
  std::vector<std::vector<std::pair<int, double>>> pairs(static_cast<size_t>(L));
  for (int l = 0; l < L; ++l) {
    auto add = [&](int b, double p) {
      pairs[l].push_back({b, p});
      items[l].push_back({layer_linear_bytes(c, layer_spec(o.base, b, p)),
                          prof->quant_at(l, b) + prof->prune_at(l, p)});
    };
    // (16, 0) would keep the layer as stored, whose bytes depend on the source dtype.
    for (int b : bit_choices)
      for (double p : p_choices)
        if (b < 16 || p > 0) add(b, p);
    if (prof->has_bits(a.bits[l])) add(a.bits[l], a.sparsity[l]);
  }
  const BudgetResult r = budget_allocate(items, target);
  LayerAllocation out;
  out.policy = "budget";
  out.target_bytes = target;
  out.budget_exact = r.exact;
  out.relative = o.relative;
  for (int l = 0; l < L; ++l) {
    out.bits.push_back(pairs[l][r.choice[l]].first);
    out.sparsity.push_back(pairs[l][r.choice[l]].second);
  }
  price(c, prof, o.base, out);
  return out;
}

LinearPlan allocation_plan(const LayerAllocation& a, const CompressSpec& base) {
  return [a, base](const TensorSpec& s) -> std::optional<CompressSpec> {
    if (s.role != TensorRole::Linear) return std::nullopt;
    return layer_spec(base, a.bits.at(static_cast<size_t>(s.layer)),
                      a.sparsity.at(static_cast<size_t>(s.layer)));
  };
}

}  // namespace edgellm
