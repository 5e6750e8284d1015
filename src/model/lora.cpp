#include "model/lora.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/checkpoint.h"
#include "kernels/matmul.h"
#include "util/error.h"
#include "util/json_field.h"
#include "util/mapped_file.h"
#include "util/rng.h"

namespace edgellm {

namespace {
constexpr const char* kNames[kLoraTargets] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                              "gate_proj", "up_proj", "down_proj"};
constexpr const char* kShort[kLoraTargets] = {"q", "k", "v", "o", "gate", "up", "down"};

std::string module_path(LoraTarget t) {
  const int i = static_cast<int>(t);
  return fmt::format("{}.{}", i < 4 ? "self_attn" : "mlp", kNames[i]);
}
std::string peft_name(int l, LoraTarget t, char ab) {
  return fmt::format("base_model.model.model.layers.{}.{}.lora_{}.weight", l, module_path(t), ab);
}
// q/k lora_B rows are output rows of q/k: internal (interleaved) <-> HF RoPE layout.
int rope_heads(const ModelConfig& c, LoraTarget t) {
  return t == LoraTarget::Q ? c.n_heads : t == LoraTarget::K ? c.n_kv_heads : 0;
}
void permute_b(std::vector<float>& b, int64_t out, int64_t r, int heads, bool to_hf) {
  Tensor t = make_owned_tensor("lora_B", DType::F32, {out, r});
  std::memcpy(const_cast<uint8_t*>(t.data), b.data(), b.size() * sizeof(float));
  Tensor p = to_hf ? permute_interleaved_to_hf(t, heads) : permute_hf_to_interleaved(t, heads);
  std::memcpy(b.data(), p.data, b.size() * sizeof(float));
}
}  // namespace

const char* lora_target_name(LoraTarget t) { return kNames[static_cast<int>(t)]; }

uint32_t lora_targets_from_list(const std::string& list, const std::string& what) {
  if (list == "all") return kAllLoraTargets;
  uint32_t mask = 0;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    int found = -1;
    for (int i = 0; i < kLoraTargets; ++i)
      if (item == kNames[i] || item == kShort[i]) found = i;
    if (found < 0)
      fail("[lora] {}: target module '{}' unknown (q,k,v,o,gate,up,down or *_proj)", what, item);
    mask |= 1u << found;
  }
  if (mask == 0) fail("[lora] {}: no target modules in '{}'", what, list);
  return mask;
}

int64_t lora_in_features(const ModelConfig& c, LoraTarget t) {
  switch (t) {
    case LoraTarget::O:
      return c.q_dim();
    case LoraTarget::Down:
      return c.hidden_dim;
    default:
      return c.dim;
  }
}

int64_t lora_out_features(const ModelConfig& c, LoraTarget t) {
  switch (t) {
    case LoraTarget::Q:
      return c.q_dim();
    case LoraTarget::K:
    case LoraTarget::V:
      return c.kv_dim();
    case LoraTarget::Gate:
    case LoraTarget::Up:
      return c.hidden_dim;
    default:
      return c.dim;
  }
}

LoraAdapters::LoraAdapters(const ModelConfig& model, LoraConfig cfg)
    : model_(model), cfg_(std::move(cfg)) {
  if (cfg_.rank <= 0) fail("[lora] rank {} must be positive", cfg_.rank);
  if (!(cfg_.dropout >= 0.f && cfg_.dropout < 1.f))
    fail("[lora] dropout {} outside [0, 1)", cfg_.dropout);
  std::vector<bool> on(model.n_layers, cfg_.layers.empty());
  for (int l : cfg_.layers) {
    if (l < 0 || l >= model.n_layers)
      fail("[lora] adapter layer {} outside the model's {} layers", l, model.n_layers);
    on[l] = true;
  }
  lin_.resize(model.n_layers);
  size_t off = 0;
  for (int l = 0; l < model.n_layers; ++l)
    for (int i = 0; i < kLoraTargets; ++i) {
      const auto t = static_cast<LoraTarget>(i);
      LoraLinear& x = lin_[l][i];
      if (!on[l] || !cfg_.has_target(t)) continue;
      x.on = true;
      x.in = lora_in_features(model, t);
      x.out = lora_out_features(model, t);
      x.a = off;
      off += static_cast<size_t>(cfg_.rank * x.in);
      x.b = off;
      off += static_cast<size_t>(x.out * cfg_.rank);
    }
  params_.assign(off, 0.f);
}

bool LoraAdapters::layer_has_any(int l) const {
  for (const LoraLinear& x : lin_[l])
    if (x.on) return true;
  return false;
}

void LoraAdapters::init_peft(uint64_t seed) {
  Rng rng(seed);
  std::fill(params_.begin(), params_.end(), 0.f);
  for (int l = 0; l < n_layers(); ++l)
    for (int i = 0; i < kLoraTargets; ++i) {
      const LoraLinear& x = lin_[l][i];
      if (!x.on) continue;
      // kaiming_uniform_(a=√5): gain √(2/(1+5)), bound = gain·√(3/fan_in) = 1/√fan_in.
      const double bound = 1.0 / std::sqrt(double(x.in));
      float* a = params_.data() + x.a;
      for (int64_t j = 0; j < cfg_.rank * x.in; ++j)
        a[j] = static_cast<float>((2 * rng.uniform() - 1) * bound);
    }
}

void lora_dropout(float* out, const float* x, int64_t n, uint64_t seed, int l, LoraTarget t,
                  float p) {
  const float inv = 1.f / (1.f - p);
  for (int64_t i = 0; i < n; ++i) out[i] = lora_dropout_keep(seed, l, t, i, p) ? x[i] * inv : 0.f;
}

void LoraAdapters::apply(int l, LoraTarget t, const float* x, float* y, int64_t T,
                         float* tmp) const {
  const LoraLinear& s = at(l, t);
  if (!s.on) return;
  const int64_t r = cfg_.rank;
  // tmp[T, r] = x[T, in]·Aᵀ;  y[T, out] += scale·tmp·Bᵀ
  sgemm(false, true, T, r, s.in, 1.f, x, s.in, A(l, t), s.in, 0.f, tmp, r);
  sgemm(false, true, T, s.out, r, cfg_.scale(), tmp, r, B(l, t), r, 1.f, y, s.out);
}

void LoraAdapters::merge_into(int l, LoraTarget t, float* w) const {
  const LoraLinear& s = at(l, t);
  if (!s.on) return;
  // w[out, in] += scale · B[out, r]·A[r, in]
  sgemm(false, false, s.out, s.in, cfg_.rank, cfg_.scale(), B(l, t), cfg_.rank, A(l, t), s.in, 1.f,
        w, s.in);
}

void LoraAdapters::save(const std::string& dir, const std::string& base_model) const {
  std::filesystem::create_directories(dir);
  // Written straight from the adapters, a row at a time (B's rows reordered to HF's RoPE layout on
  // the way): no second copy of every adapter (76 MB at the 7B shape) at the end of a run.
  std::vector<TensorOut> ts;
  std::vector<std::string> modules;
  for (int i = 0; i < kLoraTargets; ++i)
    if (cfg_.has_target(static_cast<LoraTarget>(i))) modules.push_back(kNames[i]);
  std::vector<int> layers;
  for (int l = 0; l < n_layers(); ++l) {
    if (!layer_has_any(l)) continue;
    layers.push_back(l);
    for (int i = 0; i < kLoraTargets; ++i) {
      const auto t = static_cast<LoraTarget>(i);
      const LoraLinear& s = at(l, t);
      if (!s.on) continue;
      const int64_t r = cfg_.rank, in = s.in;
      const float* a = A(l, t);
      const float* b = B(l, t);
      ts.push_back(generated_tensor_out(
          peft_name(l, t, 'A'), DType::F32, {r, in}, [a, in](int64_t row, float* dst) {
            std::memcpy(dst, a + row * in, static_cast<size_t>(in) * sizeof(float));
          }));
      const int h = rope_heads(model_, t);
      ts.push_back(generated_tensor_out(
          peft_name(l, t, 'B'), DType::F32, {s.out, r},
          [b, r](int64_t row, float* dst) {
            std::memcpy(dst, b + row * r, static_cast<size_t>(r) * sizeof(float));
          },
          h ? interleaved_to_hf_rows(s.out, h) : RowMap{}));
    }
  }
  write_safetensors(dir + "/adapter_model.safetensors", ts, {{"format", "pt"}});
  nlohmann::json j = {{"peft_type", "LORA"},
                      {"task_type", "CAUSAL_LM"},
                      {"r", cfg_.rank},
                      {"lora_alpha", cfg_.alpha},
                      {"lora_dropout", cfg_.dropout},
                      {"target_modules", modules},
                      {"bias", "none"},
                      {"fan_in_fan_out", false},
                      {"inference_mode", true},
                      {"base_model_name_or_path", base_model},
                      {"edgellm_model_shape",
                       {{"dim", model_.dim},
                        {"hidden_dim", model_.hidden_dim},
                        {"n_layers", model_.n_layers},
                        {"n_heads", model_.n_heads},
                        {"n_kv_heads", model_.n_kv_heads},
                        {"vocab_size", model_.vocab_size}}}};
  if (static_cast<int>(layers.size()) != n_layers()) j["layers_to_transform"] = layers;
  write_file_atomic(dir + "/adapter_config.json", j.dump(2) + "\n");
}

namespace {

// PEFT options that change what an adapter computes. Loading such an adapter as plain LoRA
// would silently give a different model, so each is refused with what it means.
void refuse_unsupported_peft(const nlohmann::json& j, const std::string& path) {
  auto is_true = [&](const char* k) {
    auto it = j.find(k);
    return it != j.end() && it->is_boolean() && it->get<bool>();
  };
  auto non_empty = [&](const char* k) {
    auto it = j.find(k);
    return it != j.end() && !it->is_null() && !it->empty();
  };
  if (is_true("use_dora"))
    fail("[lora] {}: use_dora: true (DoRA, weight-decomposed LoRA) is not supported", path);
  if (is_true("fan_in_fan_out"))
    fail("[lora] {}: fan_in_fan_out: true (Conv1D-style transposed weights) is not supported",
         path);
  if (is_true("use_rslora"))
    fail("[lora] {}: use_rslora: true (scale alpha/sqrt(r)) is not supported", path);
  if (is_true("lora_bias"))
    fail("[lora] {}: lora_bias: true (a trained bias on lora_B) is not supported", path);
  for (const char* k : {"rank_pattern", "alpha_pattern"})
    if (non_empty(k))
      fail(
          "[lora] {}: {} {} (per-module rank or alpha) is not supported; only one r and "
          "lora_alpha for all modules",
          path, k, j[k].dump().substr(0, 80));
  if (non_empty("modules_to_save"))
    fail("[lora] {}: modules_to_save {} (fully trained extra modules) is not supported", path,
         j["modules_to_save"].dump().substr(0, 80));
  if (auto it = j.find("bias"); it != j.end() && !it->is_null() && *it != "none")
    fail("[lora] {}: bias {} is not supported (only \"none\")", path, it->dump().substr(0, 80));
}

}  // namespace

LoraAdapters LoraAdapters::load(const std::string& dir, const ModelConfig& model) {
  const std::string cfg_path = dir + "/adapter_config.json";
  const std::string st_path = dir + "/adapter_model.safetensors";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(cfg_path));
  } catch (const nlohmann::json::exception& e) {
    fail("[lora] {}: malformed JSON: {}", cfg_path, e.what());
  }
  if (!j.is_object()) fail("[lora] {}: expected a JSON object", cfg_path);
  if (j.value("peft_type", nlohmann::json()) != "LORA")
    fail("[lora] {}: peft_type {} is not \"LORA\"", cfg_path,
         j.value("peft_type", nlohmann::json()).dump().substr(0, 80));
  refuse_unsupported_peft(j, cfg_path);
  auto req = [&](const char* k) -> const nlohmann::json& {
    auto it = j.find(k);
    if (it == j.end() || it->is_null()) fail("[lora] {}: missing field '{}'", cfg_path, k);
    return *it;
  };
  LoraConfig cfg;
  // r sizes every A and B: bounded here, and checked against the tensors' shapes (so against
  // the file's size) before anything is allocated from it.
  cfg.rank = static_cast<int>(json_int(req("r"), {"lora", cfg_path, "r"}, 1, 1 << 20));
  cfg.alpha = static_cast<float>(
      json_number(req("lora_alpha"), {"lora", cfg_path, "lora_alpha"}, -1e30, 1e30));
  if (auto it = j.find("lora_dropout"); it != j.end() && !it->is_null())
    cfg.dropout =
        static_cast<float>(json_number(*it, {"lora", cfg_path, "lora_dropout"}, 0, 0.999999));
  const nlohmann::json& tm = req("target_modules");
  std::string list;
  if (tm.is_string()) {
    list = tm.get<std::string>();
  } else if (tm.is_array()) {
    for (const auto& m : tm) {
      if (!m.is_string())
        fail("[lora] {}: field 'target_modules' holds a non-string {}", cfg_path,
             m.dump().substr(0, 80));
      list += m.get<std::string>() + ",";
    }
  } else {
    fail("[lora] {}: field 'target_modules' must be a list of names, got {}", cfg_path,
         tm.dump().substr(0, 80));
  }
  cfg.targets = lora_targets_from_list(list, cfg_path);
  if (auto it = j.find("layers_to_transform"); it != j.end() && !it->is_null()) {
    const int hi = model.n_layers - 1;
    if (it->is_array()) {
      for (size_t i = 0; i < it->size(); ++i)
        cfg.layers.push_back(static_cast<int>(json_int(
            (*it)[i], {"lora", cfg_path, fmt::format("layers_to_transform[{}]", i)}, 0, hi)));
      if (cfg.layers.empty())
        fail("[lora] {}: field 'layers_to_transform' is an empty list", cfg_path);
    } else {
      cfg.layers = {
          static_cast<int>(json_int(*it, {"lora", cfg_path, "layers_to_transform"}, 0, hi))};
    }
  }
  if (cfg.rank <= 0) fail("[lora] {}: r {} must be positive", cfg_path, cfg.rank);

  // Tensors first (the reader bounds them by the file), then the shapes every configured linear
  // needs, and only then the allocation.
  std::vector<NamedF32> ts = read_safetensors_f32(st_path);
  std::map<std::string, NamedF32*> by_name;
  for (NamedF32& t : ts) by_name[t.name] = &t;
  std::vector<bool> on(model.n_layers, cfg.layers.empty());
  for (int l : cfg.layers) on[l] = true;
  size_t used = 0;
  for (int l = 0; l < model.n_layers; ++l)
    for (int i = 0; i < kLoraTargets && on[l]; ++i) {
      const auto t = static_cast<LoraTarget>(i);
      if (!cfg.has_target(t)) continue;
      for (char ab : {'A', 'B'}) {
        const std::string name = peft_name(l, t, ab);
        auto it = by_name.find(name);
        if (it == by_name.end())
          fail("[lora] {}: missing tensor '{}' (adapter_config.json says layer {} has {})", st_path,
               name, l, kNames[i]);
        const NamedF32& x = *it->second;
        const std::vector<int64_t> want =
            ab == 'A' ? std::vector<int64_t>{cfg.rank, lora_in_features(model, t)}
                      : std::vector<int64_t>{lora_out_features(model, t), cfg.rank};
        if (x.shape != want)
          fail(
              "[lora] {}: tensor '{}' has shape [{}] but the model needs [{}] (adapter made "
              "for a different model shape?)",
              st_path, name, fmt::join(x.shape, ", "), fmt::join(want, ", "));
        // NaN/Inf weights would turn every output into NaN; say which tensor holds them.
        const int64_t bad = first_nonfinite(DType::F32, x.data.data(), x.data.size());
        if (bad >= 0)
          fail("[lora] {}: tensor '{}' holds a non-finite value ({}) at index {}", st_path, name,
               x.data[bad], bad);
        ++used;
      }
    }
  if (used != ts.size()) {
    for (const NamedF32& t : ts) {
      const auto pos = t.name.find(".layers.");
      const int l = pos == std::string::npos ? -1 : std::atoi(t.name.c_str() + pos + 8);
      if (l < 0 || l >= model.n_layers)
        fail("[lora] {}: tensor '{}' names a layer the model (of {} layers) does not have", st_path,
             t.name, model.n_layers);
    }
    fail("[lora] {}: {} tensors present but config selects {}", st_path, ts.size(), used);
  }
  LoraAdapters ad(model, cfg);
  for (int l = 0; l < model.n_layers; ++l)
    for (int i = 0; i < kLoraTargets; ++i) {
      const auto t = static_cast<LoraTarget>(i);
      const LoraLinear& s = ad.at(l, t);
      if (!s.on) continue;
      for (char ab : {'A', 'B'}) {
        NamedF32& x = *by_name.at(peft_name(l, t, ab));
        if (ab == 'B')
          if (int h = rope_heads(model, t)) permute_b(x.data, s.out, cfg.rank, h, false);
        std::memcpy(ab == 'A' ? ad.A(l, t) : ad.B(l, t), x.data.data(),
                    x.data.size() * sizeof(float));
      }
    }
  return ad;
}

}  // namespace edgellm
