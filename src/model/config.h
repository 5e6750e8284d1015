// The model is data: one ModelConfig (architecture shape) with one LayerConfig per decoder layer
// (per-layer compression and tuning choices). Every module — loaders, writers, compression,
// training, the hardware simulator — reads the shape from here.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace edgellm {

enum class Arch : uint8_t { Llama, Qwen2 };
const char* arch_name(Arch a);

// Per-layer choices that later stages fill in. Defaults mean "as loaded".
struct LayerConfig {
  int bits = 0;          // weight bit-width chosen by the compression policy (0 = unquantized)
  float sparsity = 0.f;  // fraction of zero weights in the layer's 7 linears
  // WeightFormat name (packed/weight_format.h) of the layer's 7 linears as stored: "" = none is
  // packed, "mixed" = they differ. Filled at load of a compressed checkpoint (with bits, sparsity).
  std::string format;
  bool has_exit = false;  // an early-exit head reads this layer's output
  int lora_rank = 0;      // 0 = no adapter on this layer
};

// Llama-3 style frequency-dependent RoPE scaling ("rope_type": "llama3").
struct RopeScaling {
  bool enabled = false;
  float factor = 1.f;
  float low_freq_factor = 1.f;
  float high_freq_factor = 4.f;
  int original_max_position_embeddings = 8192;
};

struct ModelConfig {
  Arch arch = Arch::Llama;
  int dim = 0;         // C: residual width
  int hidden_dim = 0;  // FF: SwiGLU inner width
  int n_layers = 0;    // L
  int n_heads = 0;     // NH: query heads
  int n_kv_heads = 0;  // KV: key/value heads (GQA when < NH)
  int head_dim = 0;    // HD: per-head width (dim / n_heads unless the checkpoint says otherwise)
  int vocab_size = 0;  // V
  int max_seq_len = 0;
  float norm_eps = 1e-5f;
  float rope_theta = 10000.f;
  RopeScaling rope_scaling;
  bool tied_embeddings = false;  // lm_head shares the token embedding
  bool qkv_bias = false;         // Qwen2: q/k/v projections carry a bias
  int bos_id = 1;
  int eos_id = 2;
  std::vector<LayerConfig> layers;  // size n_layers

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
  int64_t n_params() const;      // all weights incl. embeddings (tied head counted once)
  int64_t layer_params() const;  // one decoder layer's linear + norm weights

  // Throws Error naming `source` and the first inconsistent field.
  void validate(const std::string& source) const;

  // HF config.json <-> ModelConfig. from_hf_json validates; `source` names the file in errors.
  static ModelConfig from_hf_json(const nlohmann::json& j, const std::string& source);
  nlohmann::json to_hf_json() const;

  // Named shapes for tests, benchmarks and the simulator: "stories260K", "134M",
  // "tinyllama-1.1b", "llama2-7b", "llama-7b". Throws on an unknown name (listing known ones).
  static ModelConfig preset(const std::string& name);
  static std::vector<std::string> preset_names();
  // A shape from flags: a preset name, or "key=value,..." with keys dim, layers, heads, kv_heads,
  // ff, vocab, ctx (required unless a `base=PRESET` key supplies them), head_dim, tied (0/1),
  // theta, eps. Every value is parsed at full width and range-checked; errors name the key.
  static ModelConfig parse_shape(const std::string& spec);
  // The inverse of parse_shape for the keys it writes (a spec that reproduces this shape).
  std::string shape_spec() const;
};

}  // namespace edgellm
