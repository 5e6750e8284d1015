// The model is data: one ModelConfig (architecture shape) with one LayerConfig per decoder layer
// (per-layer compression and tuning choices). Every module — loaders, writers, compression,
// training, the hardware simulator — reads the shape from here.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace edgellm {

enum class Arch : uint8_t { Llama, Qwen2 };
const char* arch_name(Arch a);

// The seven linears of a decoder layer, in the order of LayerWeights, LoRA targets and the
// per-linear formats below.
enum class LinearId : uint8_t { Q, K, V, O, Gate, Up, Down };
constexpr int kLinears = 7;
const char* linear_name(LinearId t);  // HF module names: "q_proj", ..., "down_proj"

// Quantization grid of a linear's weights: Sym x = d·q (q in ±(2^(b−1)−1) or a block type's
// offset codes), Asym x = d·q − m (a per-group minimum / zero point).
enum class QuantScheme : uint8_t { None, Sym, Asym };
const char* quant_scheme_name(QuantScheme s);

// What compression did to one linear's weight values — the grid they sit on and their zeros —
// independent of the container they are stored in. A block-quantized container (Q8_0, Q4_K, ...)
// implies its own format, which loading fills in; a float container (f32/f16/bf16) implies none,
// so config.json's "edgellm" record (to_hf_json) says when float values were fake-quantized.
struct LinearFormat {
  int bits = 0;   // code width of the value grid, 1..16; 0 = full-precision floats
  int group = 0;  // weights per scale along the input; 0 = one scale per output row
  QuantScheme scheme = QuantScheme::None;  // None iff bits == 0
  float sparsity = 0.f;                    // fraction of zero weights, [0, 1)
  int nm_n = 0, nm_m = 0;  // N:M structured sparsity (at most N non-zeros in every M inputs);
                           // 0:0 = unstructured or none
  bool is_default() const { return *this == LinearFormat{}; }
  bool operator==(const LinearFormat&) const = default;
};

// Per-layer choices that later stages fill in: the one per-layer record that loading, saving,
// compression, training and the hardware simulator read. Defaults mean "as loaded, dense".
struct LayerConfig {
  std::array<LinearFormat, kLinears> linear{};  // indexed by LinearId
  bool has_exit = false;                        // an early-exit head reads this layer's output
  int lora_rank = 0;                            // 0 = no adapter on this layer

  LinearFormat& at(LinearId t) { return linear[static_cast<int>(t)]; }
  const LinearFormat& at(LinearId t) const { return linear[static_cast<int>(t)]; }
  void set_all(const LinearFormat& f) { linear.fill(f); }
  bool is_default() const { return *this == LayerConfig{}; }
  bool operator==(const LayerConfig&) const = default;
};

// Llama-3 style frequency-dependent RoPE scaling ("rope_type": "llama3").
struct RopeScaling {
  bool enabled = false;
  float factor = 1.f;
  float low_freq_factor = 1.f;
  float high_freq_factor = 4.f;
  int original_max_position_embeddings = 8192;
};

// Upper bound on the layer count read from any file: per-layer arrays are sized by it before the
// tensors can be counted, so an absurd count must fail here, not in the allocator. No published
// model is near it (the largest have ~128 layers).
constexpr int kMaxLayers = 1 << 16;

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
  // Input / output features of linear t.
  int64_t linear_in(LinearId t) const;
  int64_t linear_out(LinearId t) const;
  // Parameter-weighted means over layer l's linears (layer < 0: over all layers) of the value
  // grid's bits (full-precision linears count as `float_bits`) and of the sparsity.
  double mean_bits(int layer, double float_bits = 16) const;
  double mean_sparsity(int layer) const;
  int kv_dim() const { return n_kv_heads * head_dim; }
  int64_t n_params() const;      // all weights incl. embeddings (tied head counted once)
  int64_t layer_params() const;  // one decoder layer's linear + norm weights

  // Throws Error naming `source` and the first inconsistent field.
  void validate(const std::string& source) const;

  // HF config.json <-> ModelConfig. from_hf_json validates; `source` names the file in errors.
  // Non-default LayerConfigs travel under the key "edgellm" (layers_json below); HF tools ignore
  // keys they do not know.
  static ModelConfig from_hf_json(const nlohmann::json& j, const std::string& source);
  nlohmann::json to_hf_json() const;
  // {"format": 1, "layers": [{"q_proj": {"bits": 4, "group": 128, "scheme": "asym",
  // "sparsity": 0.5, "nm": "2:4"}, ..., "has_exit": true, "lora_rank": 8}, ...]}: one object per
  // layer, default fields and linears omitted; null when every layer is default.
  nlohmann::json layers_json() const;
  // Reads layers_json()'s output into `layers` (n_layers must be set); errors name `source`.
  void read_layers_json(const nlohmann::json& j, const std::string& source);

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
