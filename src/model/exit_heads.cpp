#include "model/exit_heads.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "io/safetensors.h"
#include "tensor/dtype.h"
#include "util/error.h"
#include "util/json_field.h"
#include "util/mapped_file.h"

namespace edgellm {

ExitHeadMode exit_head_mode_from_name(const std::string& s) {
  if (s == "shared") return ExitHeadMode::Shared;
  if (s == "cloned") return ExitHeadMode::Cloned;
  fail("[exits] head mode '{}' unknown (shared, cloned)", s);
}

ExitLoraMode exit_lora_mode_from_name(const std::string& s) {
  if (s == "branch") return ExitLoraMode::Branch;
  if (s == "cumulative") return ExitLoraMode::Cumulative;
  fail("[exits] lora mode '{}' unknown (branch, cumulative)", s);
}

const char* exit_head_mode_name(ExitHeadMode m) {
  return m == ExitHeadMode::Shared ? "shared" : "cloned";
}
const char* exit_lora_mode_name(ExitLoraMode m) {
  return m == ExitLoraMode::Branch ? "branch" : "cumulative";
}

ExitHeads::ExitHeads(const ModelConfig& model, ExitConfig cfg)
    : model_(model), cfg_(std::move(cfg)) {
  const int L = model_.n_layers;
  if (cfg_.depths.empty()) fail("[exits] no exits given");
  for (size_t i = 0; i < cfg_.depths.size(); ++i) {
    const int d = cfg_.depths[i];
    if (d < 1 || d > L)
      fail("[exits] exit {} at depth {} outside 1..{} (the model's layers)", i, d, L);
    if (i > 0 && d <= cfg_.depths[i - 1])
      fail("[exits] exit depths must increase: exit {} at {} after {}", i, d, cfg_.depths[i - 1]);
  }
  if (cfg_.window < 0 || cfg_.window > L)
    fail("[exits] window {} outside 0..{} (the model's layers)", cfg_.window, L);
  params_.assign(layout(model_, cfg_, &norm_off_, &head_off_), 0.f);
}

size_t ExitHeads::layout(const ModelConfig& model, const ExitConfig& cfg,
                         std::vector<size_t>* norm_off, std::vector<size_t>* head_off) {
  const size_t C = static_cast<size_t>(model.dim), V = static_cast<size_t>(model.vocab_size);
  size_t off = 0;
  for (const int d : cfg.depths) {
    if (norm_off) norm_off->push_back(off);
    if (head_off) head_off->push_back(off);
    if (d >= model.n_layers) continue;  // the model's own head
    off += C;
    if (head_off) head_off->back() = off;
    if (cfg.head_mode == ExitHeadMode::Cloned) off += V * C;
  }
  return off;
}

size_t ExitHeads::params_of(int i) const {
  if (!own(i)) return 0;
  const size_t C = static_cast<size_t>(model_.dim);
  return C +
         (cfg_.head_mode == ExitHeadMode::Cloned ? C * static_cast<size_t>(model_.vocab_size) : 0);
}

void ExitHeads::init_from(const Model& m) {
  const int64_t C = model_.dim, V = model_.vocab_size;
  const WeightView& w = m.lm_head();
  if (cfg_.head_mode == ExitHeadMode::Cloned && w.dtype == DType::Packed)
    fail(
        "[exits] cloned exit heads need an unpacked lm_head (it is packed); use --head-mode "
        "shared");
  for (int i = 0; i < n_exits(); ++i) {
    if (!own(i)) continue;
    std::copy(m.final_norm(), m.final_norm() + C, params_.data() + norm_off_[i]);
    if (cfg_.head_mode != ExitHeadMode::Cloned) continue;
    float* h = params_.data() + head_off_[i];
    for (int64_t v = 0; v < V; ++v) decode_row(w.dtype, w.row(v), h + v * C, C);
  }
}

HeadWeights ExitHeads::weights(int i, const Model& m) const {
  if (!own(i)) return m.head();
  HeadWeights hw;
  hw.norm = params_.data() + norm_off_[i];
  hw.lm_head = cfg_.head_mode == ExitHeadMode::Cloned
                   ? WeightView::f32(params_.data() + head_off_[i], model_.vocab_size, model_.dim)
                   : m.lm_head();
  return hw;
}

namespace {
constexpr const char* kTensors = "exit_heads.safetensors";
constexpr const char* kConfig = "edgellm_exits.json";
}  // namespace

void ExitHeads::save(const std::string& dir) const {
  std::filesystem::create_directories(dir);
  const int64_t C = model_.dim, V = model_.vocab_size;
  std::vector<F32View> ts;
  for (int i = 0; i < n_exits(); ++i) {
    if (!own(i)) continue;
    ts.push_back({fmt::format("exits.{}.norm.weight", i),
                  {C},
                  params_.data() + norm_off_[i],
                  static_cast<size_t>(C)});
    if (cfg_.head_mode == ExitHeadMode::Cloned)
      ts.push_back({fmt::format("exits.{}.lm_head.weight", i),
                    {V, C},
                    params_.data() + head_off_[i],
                    static_cast<size_t>(V * C)});
  }
  write_safetensors_f32(dir + "/" + kTensors, ts);
  const nlohmann::json j = {{"exit_depths", cfg_.depths},
                            {"head_mode", exit_head_mode_name(cfg_.head_mode)},
                            {"lora_mode", exit_lora_mode_name(cfg_.lora_mode)},
                            {"window", cfg_.window},
                            {"schedule", cfg_.schedule},
                            {"n_layers", model_.n_layers},
                            {"dim", model_.dim},
                            {"vocab_size", model_.vocab_size}};
  write_file_atomic(dir + "/" + kConfig, j.dump(2) + "\n");
}

bool ExitHeads::present(const std::string& dir) {
  return std::filesystem::exists(dir + "/" + kConfig);
}

ExitHeads ExitHeads::load(const std::string& dir, const ModelConfig& model) {
  const std::string cp = dir + "/" + kConfig, tp = dir + "/" + kTensors;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(cp));
  } catch (const nlohmann::json::exception& e) {
    fail("[exits] {}: malformed JSON: {}", cp, e.what());
  }
  if (!j.is_object()) fail("[exits] {}: expected a JSON object", cp);
  auto req = [&](const char* k) -> const nlohmann::json& {
    auto it = j.find(k);
    if (it == j.end()) fail("[exits] {}: field '{}' missing", cp, k);
    return *it;
  };
  auto str = [&](const char* k) {
    const nlohmann::json& v = req(k);
    if (!v.is_string()) fail("[exits] {}: field '{}' is {}, expected a string", cp, k, v.dump());
    return v.get<std::string>();
  };
  // The shape the heads were trained for must be this model's.
  const std::pair<const char*, int64_t> shape[] = {
      {"n_layers", model.n_layers}, {"dim", model.dim}, {"vocab_size", model.vocab_size}};
  for (const auto& [k, want] : shape) {
    const int64_t got = json_int(req(k), {"exits", cp, k}, 0, INT64_MAX);
    if (got != want)
      fail("[exits] {}: field '{}' is {}, the model has {} (heads of another model?)", cp, k, got,
           want);
  }
  ExitConfig cfg;
  const nlohmann::json& d = req("exit_depths");
  if (!d.is_array() || d.empty())
    fail("[exits] {}: field 'exit_depths' is {}, expected a non-empty array", cp,
         d.dump().substr(0, 80));
  for (size_t i = 0; i < d.size(); ++i)
    cfg.depths.push_back(static_cast<int>(
        json_int(d[i], {"exits", cp, fmt::format("exit_depths[{}]", i)}, 1, model.n_layers)));
  try {
    cfg.head_mode = exit_head_mode_from_name(str("head_mode"));
    cfg.lora_mode = exit_lora_mode_from_name(str("lora_mode"));
  } catch (const Error& e) {
    fail("[exits] {}: {}", cp, e.what());
  }
  cfg.window =
      static_cast<int>(json_int(req("window"), {"exits", cp, "window"}, 0, model.n_layers));
  if (j.contains("schedule") && j["schedule"].is_string()) cfg.schedule = j["schedule"];
  ExitHeads h(model, cfg);
  std::map<std::string, NamedF32> byname;
  for (NamedF32& t : read_safetensors_f32(tp)) {
    std::string name = t.name;
    byname.emplace(std::move(name), std::move(t));
  }
  const int64_t C = model.dim, V = model.vocab_size;
  std::set<std::string> taken;
  auto take = [&](const std::string& name, std::vector<int64_t> want, float* dst) {
    auto it = byname.find(name);
    if (it == byname.end()) fail("[exits] {}: tensor '{}' missing", tp, name);
    if (it->second.shape != want)
      fail("[exits] {}: tensor '{}' has shape [{}], expected [{}]", tp, name,
           fmt::join(it->second.shape, ", "), fmt::join(want, ", "));
    std::copy(it->second.data.begin(), it->second.data.end(), dst);
    taken.insert(name);
  };
  for (int i = 0; i < h.n_exits(); ++i) {
    if (!h.own(i)) continue;
    take(fmt::format("exits.{}.norm.weight", i), {C}, h.params_.data() + h.norm_off_[i]);
    if (cfg.head_mode == ExitHeadMode::Cloned)
      take(fmt::format("exits.{}.lm_head.weight", i), {V, C}, h.params_.data() + h.head_off_[i]);
  }
  if (taken.size() != byname.size())
    for (const auto& kv : byname)
      if (!taken.count(kv.first))
        fail("[exits] {}: unexpected tensor '{}' for exits at depths [{}] with {} heads", tp,
             kv.first, fmt::join(cfg.depths, ", "), exit_head_mode_name(cfg.head_mode));
  return h;
}

}  // namespace edgellm
