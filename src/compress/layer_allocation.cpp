#include "compress/layer_allocation.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "compress/budget.h"
#include "compress/policy.h"
#include "compress/prune.h"
#include "io/tensor_walk.h"
#include "packed/packed_weight.h"
#include "util/error.h"

namespace edgellm {

namespace {

int64_t linear_params(const ModelConfig& c, int t) {
  return c.linear_out(static_cast<LinearId>(t)) * c.linear_in(static_cast<LinearId>(t));
}

template <typename F>
double layer_mean(const ModelConfig& c, const LayerChoice& lc, F value) {
  double s = 0, n = 0;
  for (int t = 0; t < kLinears; ++t) {
    const double w = double(linear_params(c, t));
    s += w * value(lc[static_cast<size_t>(t)]);
    n += w;
  }
  return n > 0 ? s / n : 0.0;
}

}  // namespace

std::optional<LinearChoice> LayerAllocation::layer_choice(int l) const {
  const LayerChoice& lc = linears.at(static_cast<size_t>(l));
  for (const LinearChoice& x : lc)
    if (!(x == lc[0])) return std::nullopt;
  return lc[0];
}

double LayerAllocation::mean_bits(const ModelConfig& c, int l) const {
  return layer_mean(c, linears.at(static_cast<size_t>(l)),
                    [](const LinearChoice& x) { return double(x.bits); });
}

double LayerAllocation::mean_sparsity(const ModelConfig& c, int l) const {
  return layer_mean(c, linears.at(static_cast<size_t>(l)),
                    [](const LinearChoice& x) { return x.sparsity; });
}

nlohmann::json LayerAllocation::to_json(const ModelConfig& c) const {
  nlohmann::json bits = nlohmann::json::array(), sparsity = nlohmann::json::array();
  nlohmann::json per_linear = nlohmann::json::array();
  bool mixed = false;
  for (int l = 0; l < static_cast<int>(linears.size()); ++l) {
    if (const auto one = layer_choice(l)) {
      bits.push_back(one->bits);
      sparsity.push_back(one->sparsity);
    } else {
      mixed = true;
      bits.push_back(mean_bits(c, l));
      sparsity.push_back(mean_sparsity(c, l));
    }
    nlohmann::json o = nlohmann::json::object();
    for (int t = 0; t < kLinears; ++t)
      o[linear_name(static_cast<LinearId>(t))] = {{"bits", linears[l][t].bits},
                                                  {"sparsity", linears[l][t].sparsity}};
    per_linear.push_back(std::move(o));
  }
  nlohmann::json j = {
      {"name", policy},       {"granularity", granularity}, {"bits", bits},
      {"sparsity", sparsity}, {"infeasible", infeasible},   {"predicted_bytes", predicted_bytes}};
  if (mixed) j["linears"] = per_linear;
  if (!predicted_sensitivity.empty()) j["predicted_sensitivity"] = predicted_sensitivity;
  if (!predicted_linear_sensitivity.empty())
    j["predicted_linear_sensitivity"] = predicted_linear_sensitivity;
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
  for (int t = 0; t < kLinears; ++t) n += linear_params(c, t);
  return n * c.n_layers;
}

int64_t linear_bytes(int64_t rows, int64_t cols, const std::optional<CompressSpec>& spec,
                     double dense_bytes_per_weight) {
  if (!spec)
    return static_cast<int64_t>(std::llround(double(rows * cols) * dense_bytes_per_weight));
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
  return b;
}

int64_t layer_linear_bytes(const ModelConfig& c, const std::optional<CompressSpec>& spec,
                           double dense_bytes_per_weight) {
  int64_t total = 0;
  for (int t = 0; t < kLinears; ++t)
    total += linear_bytes(c.linear_out(static_cast<LinearId>(t)),
                          c.linear_in(static_cast<LinearId>(t)), spec, dense_bytes_per_weight);
  return total;
}

namespace {

void price(const ModelConfig& c, const SensitivityProfile* prof, const CompressSpec& base,
           LayerAllocation& a) {
  const size_t L = static_cast<size_t>(c.n_layers);
  a.predicted_bytes.assign(L, 0);
  a.predicted_sensitivity.clear();
  a.predicted_linear_sensitivity.clear();
  if (prof) a.predicted_sensitivity.assign(L, 0);
  if (prof && prof->per_linear) a.predicted_linear_sensitivity.assign(L, 0);
  for (int l = 0; l < c.n_layers; ++l) {
    for (int t = 0; t < kLinears; ++t) {
      const LinearChoice& x = a.linears[l][t];
      a.predicted_bytes[l] +=
          linear_bytes(c.linear_out(static_cast<LinearId>(t)),
                       c.linear_in(static_cast<LinearId>(t)), layer_spec(base, x.bits, x.sparsity));
      // NaN where the bit-width was not profiled (e.g. luc's B + 1 when only B was).
      if (!a.predicted_linear_sensitivity.empty())
        a.predicted_linear_sensitivity[l] +=
            prof->has_bits(x.bits)
                ? prof->linear_quant_at(l, static_cast<LinearId>(t), x.bits) +
                      prof->linear_prune_at(l, static_cast<LinearId>(t), x.sparsity)
                : std::nan("");
    }
    if (!prof) continue;
    const auto one = a.layer_choice(l);
    a.predicted_sensitivity[l] =
        one && prof->has_bits(one->bits)
            ? prof->quant_at(l, one->bits) + prof->prune_at(l, one->sparsity)
            : std::nan("");
  }
}

// One {"bits": b, "sparsity": p} object of an allocation file over `x` (its defaults). `where`
// is the JSON path of the object, for errors; `linears_ok`: a layer entry may hold "linears".
LinearChoice parse_choice(const nlohmann::json& o, LinearChoice x, const std::string& source,
                          const std::string& where, bool linears_ok) {
  if (!o.is_object())
    fail("[policy] {}: {} = {}: expected an object {{\"bits\": b, \"sparsity\": p}}", source, where,
         o.dump());
  for (auto it = o.begin(); it != o.end(); ++it) {
    const std::string& k = it.key();
    const nlohmann::json& v = it.value();
    if (k == "bits") {
      if (!v.is_number_integer() ||
          !((v.get<int64_t>() >= 2 && v.get<int64_t>() <= 8) || v.get<int64_t>() == 16))
        fail("[policy] {}: {}.bits = {}: expected an integer 2..8 or 16", source, where, v.dump());
      x.bits = v.get<int>();
    } else if (k == "sparsity") {
      if (!v.is_number() || !(v.get<double>() >= 0 && v.get<double>() < 1))
        fail("[policy] {}: {}.sparsity = {}: expected a number in [0, 1)", source, where, v.dump());
      x.sparsity = v.get<double>();
    } else if (!(k == "linears" && linears_ok)) {
      fail("[policy] {}: {}.{}: unknown key (expected bits, sparsity{})", source, where, k,
           linears_ok ? ", linears" : "");
    }
  }
  return x;
}

LayerAllocation from_file(const ModelConfig& c, const nlohmann::json& j,
                          const std::string& source) {
  const char* shape =
      "{\"layers\": [{\"bits\": b, \"sparsity\": p, \"linears\": {\"down_proj\": {...}}}, ...], "
      "\"linears\": {\"layers.3.mlp.down_proj\": {\"bits\": b, \"sparsity\": p}}}";
  if (!j.is_object()) fail("[policy] {}: expected {}", source, shape);
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key() != "layers" && it.key() != "linears")
      fail("[policy] {}: unknown key '{}' (expected {})", source, it.key(), shape);
  if (!j.contains("layers") && !j.contains("linears"))
    fail("[policy] {}: expected {}", source, shape);
  LayerAllocation a;
  a.policy = "file";
  a.linears.assign(static_cast<size_t>(c.n_layers), LayerChoice{});
  if (j.contains("layers")) {
    const nlohmann::json& layers = j["layers"];
    if (!layers.is_array() || static_cast<int>(layers.size()) != c.n_layers)
      fail("[policy] {}: 'layers' must list the model's {} layers, got {}", source, c.n_layers,
           layers.is_array() ? std::to_string(layers.size()) + " entries" : layers.dump());
    for (int l = 0; l < c.n_layers; ++l) {
      const std::string where = fmt::format("layers[{}]", l);
      const LinearChoice layer = parse_choice(layers[l], LinearChoice{}, source, where, true);
      a.linears[l].fill(layer);
      if (!layers[l].contains("linears")) continue;
      const nlohmann::json& lin = layers[l]["linears"];
      if (!lin.is_object())
        fail("[policy] {}: {}.linears = {}: expected an object keyed q_proj..down_proj", source,
             where, lin.dump());
      for (auto it = lin.begin(); it != lin.end(); ++it) {
        int t = 0;
        while (t < kLinears && it.key() != linear_name(static_cast<LinearId>(t))) ++t;
        if (t == kLinears)
          fail(
              "[policy] {}: {}.linears.{}: unknown linear (q_proj, k_proj, v_proj, o_proj, "
              "gate_proj, up_proj, down_proj)",
              source, where, it.key());
        a.linears[l][t] =
            parse_choice(it.value(), layer, source, where + ".linears." + it.key(), false);
      }
    }
  }
  if (j.contains("linears")) {
    const nlohmann::json& lin = j["linears"];
    if (!lin.is_object())
      fail(
          "[policy] {}: 'linears' = {}: expected an object keyed by module name, e.g. "
          "\"layers.3.mlp.down_proj\"",
          source, lin.dump());
    // Module names as in the HF checkpoint, "model." and ".weight" optional.
    std::map<std::string, std::pair<int, int>> names;
    for (const TensorSpec& s : model_tensor_specs(c)) {
      const int t = linear_index(s);
      if (t < 0) continue;
      std::string n = s.name;
      if (n.rfind("model.", 0) == 0) n = n.substr(6);
      if (n.size() > 7 && n.substr(n.size() - 7) == ".weight") n.resize(n.size() - 7);
      names[n] = {s.layer, t};
    }
    for (auto it = lin.begin(); it != lin.end(); ++it) {
      std::string n = it.key();
      if (n.rfind("model.", 0) == 0) n = n.substr(6);
      if (n.size() > 7 && n.substr(n.size() - 7) == ".weight") n.resize(n.size() - 7);
      const auto f = names.find(n);
      if (f == names.end())
        fail(
            "[policy] {}: linears.{}: no such linear in this {}-layer model (expected e.g. "
            "layers.0.self_attn.q_proj or layers.{}.mlp.down_proj)",
            source, it.key(), c.n_layers, c.n_layers - 1);
      auto& x = a.linears[f->second.first][f->second.second];
      x = parse_choice(it.value(), x, source, "linears." + it.key(), false);
    }
  }
  bool mixed = false;
  for (int l = 0; l < c.n_layers; ++l) mixed |= !a.layer_choice(l);
  a.granularity = mixed ? "linear" : "layer";
  return a;
}

struct Candidate {
  int bits;
  double p;
};

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
  if (o.granularity != "layer" && o.granularity != "linear")
    fail("[policy] granularity '{}' unknown (layer, linear)", o.granularity);
  if (o.granularity == "linear" && o.policy != "budget")
    fail(
        "[policy] granularity linear is chosen by --policy budget only (got {}; a per-linear "
        "allocation can also be given with --policy file)",
        o.policy);
  std::optional<SensitivityProfile> rel;
  if (prof_in && o.relative) rel = relative_profile(*prof_in);
  const SensitivityProfile* prof = rel ? &*rel : prof_in;
  if (prof && prof->n_layers() != L)
    fail("[policy] the sensitivity profile has {} layers, the model {}", prof->n_layers(), L);
  if (o.granularity == "linear" && prof && !prof->per_linear)
    fail(
        "[policy] {}: budget per linear needs per-linear curves; this profile has none (rerun "
        "`edgellm profile` without --no-per-linear)",
        prof->model);
  LayerAllocation a;
  if (o.policy == "file") {
    a = from_file(c, o.file, o.file_source);
  } else {
    std::vector<int> bits;
    std::vector<double> sparsity;
    if (o.policy == "uniform") {
      a.policy = "uniform";
      bits.assign(static_cast<size_t>(L), o.B);
      sparsity.assign(static_cast<size_t>(L), o.P);
    } else {
      if (!prof) fail("[policy] --policy {} needs a sensitivity profile", o.policy);
      PolicyInputs in;
      in.B = o.B;
      in.P = o.P;
      in.p_min = o.p_min;
      in.p_max = o.p_max;
      in.seed = o.seed;
      // B = 16 (pruning only): every layer at 16 bits, no quantization sensitivity needed.
      in.s_quant =
          o.B >= 16 ? std::vector<double>(static_cast<size_t>(L), 0.0) : prof->s_quant(o.B);
      in.s_prune = o.P > 0 ? prof->s_prune() : std::vector<double>(static_cast<size_t>(L), 1.0);
      if (o.weighted)
        for (int l = 0; l < L; ++l) in.weights.push_back(double(prof->layers[l].params()));
      const std::string base_policy = o.policy == "budget" ? "luc" : o.policy;
      const Allocation al = allocate(base_policy, in);
      a.policy = base_policy;
      bits = al.bits;
      sparsity = al.sparsity;
      a.infeasible = al.infeasible;
      for (int& b : bits) b = o.B >= 16 ? 16 : std::min(b, 8);
      if (o.P <= 0) std::fill(sparsity.begin(), sparsity.end(), 0.0);
    }
    for (int l = 0; l < L; ++l) {
      const int b = bits[l];
      const double p = sparsity[l];
      if (!((b >= 2 && b <= 8) || b == 16))
        fail("[policy] {}: layer {} bits {} (expected 2..8 or 16)", a.policy, l, b);
      if (!(p >= 0 && p < 1))
        fail("[policy] {}: layer {} sparsity {} outside [0, 1){}", a.policy, l, p,
             a.policy == "luc-literal" ? " (Eq. 2 as printed is infeasible here)" : "");
      LayerChoice lc;
      lc.fill({b, p});
      a.linears.push_back(lc);
    }
  }
  a.relative = o.relative;
  price(c, prof, o.base, a);
  if (o.policy != "budget") return a;

  // Budget: a multiple-choice knapsack per layer or per linear, the layer's luc pair among the
  // choices so the optimum can never be worse than luc at luc's size under the additive model.
  const int64_t luc_bytes = [&] {
    int64_t s = 0;
    for (int64_t b : a.predicted_bytes) s += b;
    return s;
  }();
  const int64_t target =
      o.target_bytes > 0 ? o.target_bytes
      : o.target_bpw > 0
          ? static_cast<int64_t>(std::floor(o.target_bpw * double(decoder_linear_params(c)) / 8.0))
          : luc_bytes;
  // (16, 0) would keep the linear as stored, whose bytes depend on the source dtype.
  std::vector<Candidate> common;
  std::vector<int> bit_choices = prof->bits;
  bit_choices.push_back(16);
  std::vector<double> p_choices{0.0};
  for (double p : prof->sparsity)
    if (p <= o.p_max) p_choices.push_back(p);
  for (int b : bit_choices)
    for (double p : p_choices)
      if (b < 16 || p > 0) common.push_back({b, p});
  const bool per_linear = o.granularity == "linear";
  const int per_layer_items = per_linear ? kLinears : 1;
  std::vector<std::vector<BudgetChoice>> items(static_cast<size_t>(L * per_layer_items));
  std::vector<std::vector<Candidate>> cands(items.size());
  for (int l = 0; l < L; ++l) {
    std::vector<Candidate> cl = common;
    const LinearChoice luc = a.linears[l][0];  // per-layer luc: all seven share it
    if (prof->has_bits(luc.bits)) cl.push_back({luc.bits, luc.sparsity});
    for (int i = 0; i < per_layer_items; ++i) {
      const size_t item = static_cast<size_t>(l * per_layer_items + i);
      const LinearId t = static_cast<LinearId>(i);
      for (const Candidate& k : cl) {
        const auto spec = layer_spec(o.base, k.bits, k.p);
        const BudgetChoice ch =
            per_linear ? BudgetChoice{linear_bytes(c.linear_out(t), c.linear_in(t), spec),
                                      prof->linear_quant_at(l, t, k.bits) +
                                          prof->linear_prune_at(l, t, k.p)}
                       : BudgetChoice{layer_linear_bytes(c, spec),
                                      prof->quant_at(l, k.bits) + prof->prune_at(l, k.p)};
        items[item].push_back(ch);
        cands[item].push_back(k);
      }
    }
  }
  const BudgetResult r = budget_allocate(items, target);
  LayerAllocation out;
  out.policy = "budget";
  out.granularity = o.granularity;
  out.target_bytes = target;
  out.budget_exact = r.exact;
  out.relative = o.relative;
  out.linears.assign(static_cast<size_t>(L), LayerChoice{});
  for (int l = 0; l < L; ++l)
    for (int t = 0; t < kLinears; ++t) {
      const size_t item = static_cast<size_t>(l * per_layer_items + (per_linear ? t : 0));
      const Candidate& k = cands[item][static_cast<size_t>(r.choice[item])];
      out.linears[l][t] = {k.bits, k.p};
    }
  price(c, prof, o.base, out);
  return out;
}

LinearPlan allocation_plan(const LayerAllocation& a, const CompressSpec& base) {
  return [a, base](const TensorSpec& s) -> std::optional<CompressSpec> {
    const int t = linear_index(s);
    if (t < 0) return std::nullopt;
    const LinearChoice& x = a.linears.at(static_cast<size_t>(s.layer)).at(static_cast<size_t>(t));
    return layer_spec(base, x.bits, x.sparsity);
  };
}

}  // namespace edgellm
