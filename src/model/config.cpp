#include "model/config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <type_traits>

#include "util/error.h"
#include "util/json_field.h"

namespace edgellm {

const char* arch_name(Arch a) { return a == Arch::Qwen2 ? "qwen2" : "llama"; }

namespace {

// A field of the "edgellm" per-layer record, or its default when absent: integers and numbers at
// full width through util/json_field.h (nothing narrows silently), strings and flags by type.
template <typename T>
T get_or(const nlohmann::json& j, const char* key, T dflt, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  const JsonWhere w{"config", source, key};
  if constexpr (std::is_same_v<T, bool>) {
    return json_bool(*it, w);
  } else if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(
        json_int(*it, w, std::numeric_limits<T>::min(), std::numeric_limits<T>::max()));
  } else if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(json_number(*it, w, -1e30, 1e30));
  } else {
    if (!it->is_string())
      fail("[config] {}: field '{}' has the wrong type: {}", source, key, it->dump());
    return it->get<T>();
  }
}
constexpr const char* kLinearNames[kLinears] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                "gate_proj", "up_proj", "down_proj"};
}  // namespace

const char* linear_name(LinearId t) { return kLinearNames[static_cast<int>(t)]; }

const char* quant_scheme_name(QuantScheme s) {
  return s == QuantScheme::Sym ? "sym" : s == QuantScheme::Asym ? "asym" : "none";
}

int64_t ModelConfig::linear_in(LinearId t) const {
  switch (t) {
    case LinearId::O:
      return q_dim();
    case LinearId::Down:
      return hidden_dim;
    default:
      return dim;
  }
}

int64_t ModelConfig::linear_out(LinearId t) const {
  switch (t) {
    case LinearId::Q:
      return q_dim();
    case LinearId::K:
    case LinearId::V:
      return kv_dim();
    case LinearId::Gate:
    case LinearId::Up:
      return hidden_dim;
    default:
      return dim;
  }
}

namespace {
// Σ f(format)·params / Σ params over the linears of layer l (all layers when l < 0).
template <typename F>
double weighted_mean(const ModelConfig& c, int layer, F f) {
  double num = 0, den = 0;
  const int l0 = layer < 0 ? 0 : layer, l1 = layer < 0 ? c.n_layers : layer + 1;
  for (int l = l0; l < l1; ++l)
    for (int i = 0; i < kLinears; ++i) {
      const auto t = static_cast<LinearId>(i);
      const double n = static_cast<double>(c.linear_in(t)) * static_cast<double>(c.linear_out(t));
      num += n * f(c.layers[l].linear[i]);
      den += n;
    }
  return den > 0 ? num / den : 0.0;
}
}  // namespace

double ModelConfig::mean_bits(int layer, double float_bits) const {
  return weighted_mean(*this, layer, [&](const LinearFormat& f) {
    return f.bits > 0 ? static_cast<double>(f.bits) : float_bits;
  });
}

double ModelConfig::mean_sparsity(int layer) const {
  return weighted_mean(*this, layer, [](const LinearFormat& f) { return double(f.sparsity); });
}

int64_t ModelConfig::layer_params() const {
  int64_t d = dim, q = q_dim(), kv = kv_dim(), ff = hidden_dim;
  int64_t p = d * q + 2 * d * kv + q * d + 3 * d * ff + 2 * d;
  if (qkv_bias) p += q + 2 * kv;
  return p;
}

int64_t ModelConfig::n_params() const {
  int64_t emb = static_cast<int64_t>(vocab_size) * dim;
  return emb * (tied_embeddings ? 1 : 2) + n_layers * layer_params() + dim;
}

void ModelConfig::validate(const std::string& source) const {
  auto positive = [&](const char* field, int v) {
    if (v <= 0) fail("[config] {}: {} must be positive, got {}", source, field, v);
  };
  positive("dim (hidden_size)", dim);
  positive("hidden_dim (intermediate_size)", hidden_dim);
  positive("n_layers (num_hidden_layers)", n_layers);
  if (n_layers > kMaxLayers)
    fail("[config] {}: n_layers (num_hidden_layers) {} exceeds the limit of {}", source, n_layers,
         kMaxLayers);
  positive("n_heads (num_attention_heads)", n_heads);
  positive("n_kv_heads (num_key_value_heads)", n_kv_heads);
  positive("head_dim", head_dim);
  positive("vocab_size", vocab_size);
  positive("max_seq_len (max_position_embeddings)", max_seq_len);
  if (n_heads % n_kv_heads != 0)
    fail("[config] {}: num_attention_heads {} is not a multiple of num_key_value_heads {}", source,
         n_heads, n_kv_heads);
  // q_dim()/kv_dim() are ints; their products must not overflow.
  if (int64_t{n_heads} * head_dim > INT32_MAX)
    fail("[config] {}: num_attention_heads {} x head_dim {} is too large", source, n_heads,
         head_dim);
  if (head_dim % 2 != 0) fail("[config] {}: head_dim {} must be even for RoPE", source, head_dim);
  if (!(norm_eps > 0.f))
    fail("[config] {}: rms_norm_eps must be positive, got {}", source, norm_eps);
  if (!(rope_theta > 0.f))
    fail("[config] {}: rope_theta must be positive, got {}", source, rope_theta);
  if (rope_scaling.enabled &&
      !(rope_scaling.factor > 0.f && rope_scaling.high_freq_factor > rope_scaling.low_freq_factor &&
        rope_scaling.low_freq_factor > 0.f && rope_scaling.original_max_position_embeddings > 0))
    fail(
        "[config] {}: rope_scaling needs factor > 0 and high_freq_factor > low_freq_factor > 0, "
        "got factor {}, low {}, high {}",
        source, rope_scaling.factor, rope_scaling.low_freq_factor, rope_scaling.high_freq_factor);
  if (static_cast<int>(layers.size()) != n_layers)
    fail("[config] {}: {} layer configs for {} layers", source, layers.size(), n_layers);
  for (size_t l = 0; l < layers.size(); ++l)
    for (int i = 0; i < kLinears; ++i) {
      const LinearFormat& f = layers[l].linear[i];
      const char* n = kLinearNames[i];
      if (f.bits < 0 || f.bits > 16)
        fail("[config] {}: layer {} {}: bits {} outside [0, 16]", source, l, n, f.bits);
      if ((f.bits == 0) != (f.scheme == QuantScheme::None))
        fail("[config] {}: layer {} {}: scheme '{}' does not fit bits {} (none iff bits 0)", source,
             l, n, quant_scheme_name(f.scheme), f.bits);
      if (f.group < 0) fail("[config] {}: layer {} {}: group {} negative", source, l, n, f.group);
      if (!(f.sparsity >= 0.f && f.sparsity < 1.f))
        fail("[config] {}: layer {} {}: sparsity {} outside [0, 1)", source, l, n, f.sparsity);
      if (f.nm_m != 0 || f.nm_n != 0)
        if (!(0 < f.nm_n && f.nm_n < f.nm_m))
          fail("[config] {}: layer {} {}: N:M pattern {}:{} needs 0 < N < M", source, l, n, f.nm_n,
               f.nm_m);
    }
  if (bos_id >= vocab_size || eos_id >= vocab_size)
    fail("[config] {}: bos/eos id {}/{} outside vocab of {}", source, bos_id, eos_id, vocab_size);
}

namespace {

// config.json fields, read at full width and range-checked before narrowing (util/json_field.h).
struct Fields {
  const nlohmann::json& j;
  const std::string& source;
  std::string prefix;  // "" or "rope_scaling."

  const nlohmann::json* find(const char* key) const {
    auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  }
  JsonWhere where(const char* key) const { return {"config", source, prefix + key}; }
  const nlohmann::json& req(const char* key) const {
    const nlohmann::json* v = find(key);
    if (!v) fail("[config] {}: missing required field '{}'", source, prefix + key);
    return *v;
  }
  // Sizes and counts: positive and within int.
  int size(const char* key) const {
    return static_cast<int>(json_int(req(key), where(key), 1, INT32_MAX));
  }
  int size_or(const char* key, int dflt) const {
    const nlohmann::json* v = find(key);
    return v ? static_cast<int>(json_int(*v, where(key), 1, INT32_MAX)) : dflt;
  }
  int id_or(const char* key, int dflt) const {
    const nlohmann::json* v = find(key);
    return v ? static_cast<int>(json_int(*v, where(key), 0, INT32_MAX)) : dflt;
  }
  float positive_or(const char* key, float dflt) const {
    const nlohmann::json* v = find(key);
    // Positive and representable as a float (FLT_MAX); 0 and negatives are refused here too.
    return v ? static_cast<float>(json_number(*v, where(key), 1e-38, 3.4e38)) : dflt;
  }
  bool flag_or(const char* key, bool dflt) const {
    const nlohmann::json* v = find(key);
    return v ? json_bool(*v, where(key)) : dflt;
  }
  std::string string_or(const char* key, const std::string& dflt) const {
    const nlohmann::json* v = find(key);
    if (!v) return dflt;
    if (!v->is_string())
      fail("[config] {}: field '{}' must be a string, got {}", source, prefix + key,
           v->dump().substr(0, 80));
    return v->get<std::string>();
  }
};

}  // namespace

ModelConfig ModelConfig::from_hf_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) fail("[config] {}: expected a JSON object", source);
  const Fields f{j, source, ""};
  ModelConfig c;
  std::string model_type = f.string_or("model_type", "llama");
  if (model_type == "llama" || model_type == "mistral")
    c.arch = Arch::Llama;
  else if (model_type == "qwen2")
    c.arch = Arch::Qwen2;
  else
    fail("[config] {}: model_type '{}' is not supported (llama, mistral, qwen2)", source,
         model_type);
  c.dim = f.size("hidden_size");
  c.hidden_dim = f.size("intermediate_size");
  c.n_layers = static_cast<int>(
      json_int(f.req("num_hidden_layers"), f.where("num_hidden_layers"), 1, kMaxLayers));
  c.n_heads = f.size("num_attention_heads");
  c.n_kv_heads = f.size_or("num_key_value_heads", c.n_heads);
  c.vocab_size = f.size("vocab_size");
  c.max_seq_len = f.size_or("max_position_embeddings", 2048);
  c.norm_eps = f.positive_or("rms_norm_eps", 1e-6f);
  c.rope_theta = f.positive_or("rope_theta", 10000.f);
  c.tied_embeddings = f.flag_or("tie_word_embeddings", false);
  c.head_dim = f.size_or("head_dim", c.dim / c.n_heads);
  c.qkv_bias = c.arch == Arch::Qwen2 ? true : f.flag_or("attention_bias", false);
  c.bos_id = f.id_or("bos_token_id", 1);
  if (const nlohmann::json* e = f.find("eos_token_id"); e && e->is_array()) {
    // Several end tokens (Llama-3 instruct): the first is the one generation stops at.
    if (e->empty()) fail("[config] {}: field 'eos_token_id' is an empty list", source);
    c.eos_id = static_cast<int>(json_int((*e)[0], f.where("eos_token_id[0]"), 0, INT32_MAX));
  } else {
    c.eos_id = f.id_or("eos_token_id", 2);
  }
  if (f.find("sliding_window") && f.flag_or("use_sliding_window", model_type == "mistral"))
    fail("[config] {}: sliding-window attention is not supported (sliding_window={})", source,
         j["sliding_window"].dump());
  if (const nlohmann::json* rs = f.find("rope_scaling")) {
    if (!rs->is_object())
      fail("[config] {}: field 'rope_scaling' must be an object, got {}", source,
           rs->dump().substr(0, 80));
    const Fields r{*rs, source, "rope_scaling."};
    std::string type = r.string_or("rope_type", r.string_or("type", ""));
    if (type != "llama3")
      fail("[config] {}: rope_scaling type '{}' is not supported (llama3)", source, type);
    c.rope_scaling.enabled = true;
    c.rope_scaling.factor =
        static_cast<float>(json_number(r.req("factor"), r.where("factor"), 1e-38, 3.4e38));
    c.rope_scaling.low_freq_factor = r.positive_or("low_freq_factor", 1.f);
    c.rope_scaling.high_freq_factor = r.positive_or("high_freq_factor", 4.f);
    c.rope_scaling.original_max_position_embeddings =
        r.size_or("original_max_position_embeddings", 8192);
  }
  c.layers.assign(c.n_layers, LayerConfig{});
  if (j.contains("edgellm") && !j["edgellm"].is_null()) c.read_layers_json(j["edgellm"], source);
  c.validate(source);
  return c;
}

nlohmann::json ModelConfig::to_hf_json() const {
  nlohmann::json j;
  j["architectures"] = {arch == Arch::Qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM"};
  j["model_type"] = arch_name(arch);
  j["hidden_size"] = dim;
  j["intermediate_size"] = hidden_dim;
  j["num_hidden_layers"] = n_layers;
  j["num_attention_heads"] = n_heads;
  j["num_key_value_heads"] = n_kv_heads;
  j["head_dim"] = head_dim;
  j["vocab_size"] = vocab_size;
  j["max_position_embeddings"] = max_seq_len;
  j["rms_norm_eps"] = norm_eps;
  j["rope_theta"] = rope_theta;
  j["tie_word_embeddings"] = tied_embeddings;
  j["hidden_act"] = "silu";
  j["bos_token_id"] = bos_id;
  j["eos_token_id"] = eos_id;
  j["torch_dtype"] = "float32";
  if (arch == Arch::Llama) j["attention_bias"] = qkv_bias;
  if (rope_scaling.enabled) {
    j["rope_scaling"] = {
        {"rope_type", "llama3"},
        {"factor", rope_scaling.factor},
        {"low_freq_factor", rope_scaling.low_freq_factor},
        {"high_freq_factor", rope_scaling.high_freq_factor},
        {"original_max_position_embeddings", rope_scaling.original_max_position_embeddings}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  if (nlohmann::json e = layers_json(); !e.is_null()) j["edgellm"] = std::move(e);
  return j;
}

nlohmann::json ModelConfig::layers_json() const {
  bool any = false;
  for (const LayerConfig& lc : layers) any |= !lc.is_default();
  if (!any) return nullptr;
  nlohmann::json arr = nlohmann::json::array();
  for (const LayerConfig& lc : layers) {
    nlohmann::json o = nlohmann::json::object();
    for (int i = 0; i < kLinears; ++i) {
      const LinearFormat& f = lc.linear[i];
      if (f.is_default()) continue;
      nlohmann::json fj = nlohmann::json::object();
      if (f.bits) fj["bits"] = f.bits;
      if (f.group) fj["group"] = f.group;
      if (f.scheme != QuantScheme::None) fj["scheme"] = quant_scheme_name(f.scheme);
      if (f.sparsity != 0.f) fj["sparsity"] = f.sparsity;
      if (f.nm_m) fj["nm"] = fmt::format("{}:{}", f.nm_n, f.nm_m);
      o[kLinearNames[i]] = std::move(fj);
    }
    if (lc.has_exit) o["has_exit"] = true;
    if (lc.lora_rank) o["lora_rank"] = lc.lora_rank;
    arr.push_back(std::move(o));
  }
  return {{"format", 1}, {"layers", std::move(arr)}};
}

void ModelConfig::read_layers_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object())
    fail("[config] {}: field 'edgellm' must be an object, got {}", source, j.dump());
  const int version = get_or<int>(j, "format", 1, source);
  if (version != 1)
    fail("[config] {}: edgellm.format {} unknown (this build reads format 1)", source, version);
  if (!j.contains("layers")) return;
  const auto& arr = j["layers"];
  if (!arr.is_array() || static_cast<int>(arr.size()) != n_layers)
    fail("[config] {}: edgellm.layers must list {} layers, got {}", source, n_layers, arr.dump());
  layers.assign(n_layers, LayerConfig{});
  for (int l = 0; l < n_layers; ++l) {
    const auto& o = arr[l];
    if (!o.is_object()) fail("[config] {}: edgellm.layers[{}] is not an object", source, l);
    LayerConfig& lc = layers[l];
    for (auto it = o.begin(); it != o.end(); ++it) {
      const std::string& key = it.key();
      const std::string where = fmt::format("{}: edgellm.layers[{}].{}", source, l, key);
      if (key == "has_exit") {
        lc.has_exit = get_or<bool>(o, "has_exit", false, source);
        continue;
      }
      if (key == "lora_rank") {
        lc.lora_rank = get_or<int>(o, "lora_rank", 0, source);
        continue;
      }
      int i = 0;
      while (i < kLinears && key != kLinearNames[i]) ++i;
      if (i == kLinears)
        fail("[config] {}: unknown key (expected a *_proj name, has_exit, lora_rank)", where);
      const auto& fj = it.value();
      if (!fj.is_object()) fail("[config] {}: expected an object, got {}", where, fj.dump());
      LinearFormat& f = lc.linear[i];
      f.bits = get_or<int>(fj, "bits", 0, where);
      f.group = get_or<int>(fj, "group", 0, where);
      f.sparsity = get_or<float>(fj, "sparsity", 0.f, where);
      const std::string scheme = get_or<std::string>(fj, "scheme", "none", where);
      if (scheme == "sym")
        f.scheme = QuantScheme::Sym;
      else if (scheme == "asym")
        f.scheme = QuantScheme::Asym;
      else if (scheme == "none")
        f.scheme = QuantScheme::None;
      else
        fail("[config] {}: scheme '{}' unknown (sym, asym, none)", where, scheme);
      const std::string nm = get_or<std::string>(fj, "nm", "", where);
      if (!nm.empty() && std::sscanf(nm.c_str(), "%d:%d", &f.nm_n, &f.nm_m) != 2)
        fail("[config] {}: nm '{}' is not N:M", where, nm);
    }
  }
}

namespace {
ModelConfig make(int dim, int ff, int L, int nh, int kv, int V, int seq, float eps, bool tied) {
  ModelConfig c;
  c.dim = dim;
  c.hidden_dim = ff;
  c.n_layers = L;
  c.n_heads = nh;
  c.n_kv_heads = kv;
  c.head_dim = dim / nh;
  c.vocab_size = V;
  c.max_seq_len = seq;
  c.norm_eps = eps;
  c.tied_embeddings = tied;
  c.layers.assign(L, LayerConfig{});
  return c;
}
}  // namespace

ModelConfig ModelConfig::preset(const std::string& name) {
  // Shapes from the published configs: stories260K (llama2.c doc/stories260K.md), the 134M
  // benchmark shape of the issue tracker, TinyLlama-1.1B and Llama-2-7B / LLaMA-7B config.json.
  if (name == "stories260K") return make(64, 172, 5, 8, 4, 512, 512, 1e-5f, true);
  if (name == "134M") return make(768, 2048, 12, 12, 12, 32000, 2048, 1e-5f, false);
  if (name == "tinyllama-1.1b") return make(2048, 5632, 22, 32, 4, 32000, 2048, 1e-5f, false);
  if (name == "llama2-7b") return make(4096, 11008, 32, 32, 32, 32000, 4096, 1e-5f, false);
  if (name == "llama-7b") return make(4096, 11008, 32, 32, 32, 32000, 2048, 1e-6f, false);
  std::string known;
  for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
  fail("[config] unknown model shape '{}' (known: {})", name, known);
}

ModelConfig ModelConfig::parse_shape(const std::string& spec) {
  if (spec.find('=') == std::string::npos) return preset(spec);
  ModelConfig c;
  bool have_base = false;
  std::map<std::string, std::string> kv;
  size_t start = 0;
  while (start <= spec.size()) {
    const size_t comma = std::min(spec.find(',', start), spec.size());
    const std::string item = spec.substr(start, comma - start);
    start = comma + 1;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      fail("[config] --shape '{}': item '{}' is not key=value", spec, item);
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key == "base") {
      c = preset(value);
      have_base = true;
      continue;
    }
    if (!kv.emplace(key, value).second)
      fail("[config] --shape '{}': key '{}' given twice", spec, key);
  }
  auto integer = [&](const std::string& key, int64_t lo, int64_t hi) -> int {
    const std::string& v = kv.at(key);
    size_t used = 0;
    long long x = 0;
    try {
      x = std::stoll(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != v.size() || used == 0) fail("[config] --shape: {}={} is not an integer", key, v);
    if (x < lo || x > hi) fail("[config] --shape: {}={} outside [{}, {}]", key, v, lo, hi);
    return static_cast<int>(x);
  };
  auto real = [&](const std::string& key) -> float {
    const std::string& v = kv.at(key);
    size_t used = 0;
    double x = 0;
    try {
      x = std::stod(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != v.size() || used == 0 || !(x > 0) || !std::isfinite(x))
      fail("[config] --shape: {}={} is not a positive number", key, v);
    return static_cast<float>(x);
  };
  constexpr int64_t kMaxDim = 1 << 16, kMaxVocab = 1 << 22, kMaxCtx = 1 << 20;
  const std::pair<const char*, int*> required[] = {
      {"dim", &c.dim},        {"layers", &c.n_layers},
      {"heads", &c.n_heads},  {"kv_heads", &c.n_kv_heads},
      {"ff", &c.hidden_dim},  {"vocab", &c.vocab_size},
      {"ctx", &c.max_seq_len}};
  for (const auto& [key, field] : required) {
    if (kv.count(key)) {
      const int64_t hi = std::string(key) == "vocab"    ? kMaxVocab
                         : std::string(key) == "ctx"    ? kMaxCtx
                         : std::string(key) == "layers" ? 1024
                                                        : kMaxDim;
      *field = integer(key, 1, hi);
    } else if (!have_base) {
      fail("[config] --shape '{}': missing key '{}' (or give base=PRESET)", spec, key);
    }
  }
  if (kv.count("head_dim")) {
    c.head_dim = integer("head_dim", 2, kMaxDim);
  } else if (kv.count("dim") || kv.count("heads") || !have_base) {
    if (c.dim % c.n_heads != 0)
      fail("[config] --shape: dim={} is not a multiple of heads={} (give head_dim)", c.dim,
           c.n_heads);
    c.head_dim = c.dim / c.n_heads;
  }
  if (kv.count("tied")) c.tied_embeddings = integer("tied", 0, 1) != 0;
  if (kv.count("theta")) c.rope_theta = real("theta");
  if (kv.count("eps")) c.norm_eps = real("eps");
  static const char* known[] = {"dim", "layers",   "heads", "kv_heads", "ff", "vocab",
                                "ctx", "head_dim", "tied",  "theta",    "eps"};
  for (const auto& entry : kv)
    if (std::find_if(std::begin(known), std::end(known),
                     [&](const char* k) { return entry.first == k; }) == std::end(known))
      fail(
          "[config] --shape: unknown key '{}' (known: base, dim, layers, heads, kv_heads, ff, "
          "vocab, ctx, head_dim, tied, theta, eps)",
          entry.first);
  c.layers.assign(c.n_layers, LayerConfig{});
  c.validate("--shape " + spec);
  return c;
}

std::string ModelConfig::shape_spec() const {
  return fmt::format(
      "dim={},layers={},heads={},kv_heads={},ff={},vocab={},ctx={},head_dim={},tied={},theta={},"
      "eps={}",
      dim, n_layers, n_heads, n_kv_heads, hidden_dim, vocab_size, max_seq_len, head_dim,
      tied_embeddings ? 1 : 0, rope_theta, norm_eps);
}

std::vector<std::string> ModelConfig::preset_names() {
  return {"stories260K", "134M", "tinyllama-1.1b", "llama2-7b", "llama-7b"};
}

}  // namespace edgellm
