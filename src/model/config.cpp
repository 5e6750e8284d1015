#include "model/config.h"

#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/json_field.h"

namespace edgellm {

const char* arch_name(Arch a) { return a == Arch::Qwen2 ? "qwen2" : "llama"; }

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
  return j;
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

std::vector<std::string> ModelConfig::preset_names() {
  return {"stories260K", "134M", "tinyllama-1.1b", "llama2-7b", "llama-7b"};
}

}  // namespace edgellm
