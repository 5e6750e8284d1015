// LoRA adapters (Hu et al. 2021) on the seven linears of LLaMA decoder layers:
//   y = W·x + (alpha / r) · B·(A·dropout(x)),   A [r, in], B [out, r]
// with PEFT's initialisation (A Kaiming-uniform with a = √5, i.e. U(−1/√in, 1/√in); B = 0) so a
// fresh adapter leaves the model unchanged. The type lives in model/ because inference applies
// adapters unmerged (InferenceState::set_adapter); training (src/train) owns their gradients.
//
// All A and B matrices of all layers live in one fp32 arena (`params()`), so the optimizer,
// gradient clipping and checkpointing treat the adapter as one flat vector.
//
// On disk: PEFT's format, so adapters move to and from HF PEFT unchanged:
//   adapter_model.safetensors: base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight
//     [r, in] and ...lora_B.weight [out, r] (F32), for self_attn.{q,k,v,o}_proj and
//     mlp.{gate,up,down}_proj; q/k lora_B rows in the HF (rotate-halves) RoPE layout;
//   adapter_config.json: peft_type "LORA", r, lora_alpha, lora_dropout, target_modules,
//     layers_to_transform, bias "none", task_type "CAUSAL_LM", base_model_name_or_path.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "io/safetensors.h"  // NamedF32, read/write_safetensors_f32 (adapter files)
#include "model/config.h"

namespace edgellm {

// The adaptable linears are the layer's seven linears (config.h), one enum for both.
using LoraTarget = LinearId;
constexpr int kLoraTargets = kLinears;
constexpr uint32_t kAllLoraTargets = 0x7f;

// "q_proj", ..., "down_proj" (PEFT target_modules names)
const char* lora_target_name(LoraTarget t);
// Parses a comma list of q,k,v,o,gate,up,down (or q_proj, ... or "all") into a bit mask;
// throws naming `what` and the bad entry.
uint32_t lora_targets_from_list(const std::string& list, const std::string& what);
// Input/output features of target t in a layer of shape c.
int64_t lora_in_features(const ModelConfig& c, LoraTarget t);
int64_t lora_out_features(const ModelConfig& c, LoraTarget t);

struct LoraConfig {
  int rank = 8;
  float alpha = 16.f;
  float dropout = 0.f;
  uint32_t targets = kAllLoraTargets;  // bit (1 << LoraTarget)
  std::vector<int> layers;             // layers carrying adapters; empty = all
  float scale() const { return alpha / static_cast<float>(rank); }
  bool has_target(LoraTarget t) const { return targets & (1u << static_cast<int>(t)); }
};

struct LoraLinear {
  bool on = false;
  int64_t in = 0, out = 0;
  size_t a = 0, b = 0;  // offsets into params(): A [r, in], B [out, r]
};

class LoraAdapters {
 public:
  LoraAdapters(const ModelConfig& model, LoraConfig cfg);

  const LoraConfig& config() const { return cfg_; }
  const ModelConfig& model_config() const { return model_; }
  int n_layers() const { return static_cast<int>(lin_.size()); }
  const LoraLinear& at(int l, LoraTarget t) const { return lin_[l][static_cast<int>(t)]; }
  bool has(int l, LoraTarget t) const { return at(l, t).on; }
  bool layer_has_any(int l) const;
  float* A(int l, LoraTarget t) { return params_.data() + at(l, t).a; }  // [r, in]
  float* B(int l, LoraTarget t) { return params_.data() + at(l, t).b; }  // [out, r]
  const float* A(int l, LoraTarget t) const { return params_.data() + at(l, t).a; }
  const float* B(int l, LoraTarget t) const { return params_.data() + at(l, t).b; }
  std::vector<float>& params() { return params_; }
  const std::vector<float>& params() const { return params_; }

  // PEFT init: A ~ U(−1/√in, 1/√in) (kaiming_uniform_(a=√5)), B = 0. Deterministic in seed.
  void init_peft(uint64_t seed);

  // y[T, out] += scale · (x[T, in]·Aᵀ)·Bᵀ. tmp: T*rank floats, left holding x·Aᵀ (what the
  // training backward keeps). Dropout, when training, is applied to x by the caller
  // (lora_dropout below), so inference and training run this same product.
  void apply(int l, LoraTarget t, const float* x, float* y, int64_t T, float* tmp) const;
  // w[out, in] (fp32, row-major) += scale · B·A: folds the adapter into a weight.
  void merge_into(int l, LoraTarget t, float* w) const;

  // Writes dir/adapter_model.safetensors and dir/adapter_config.json (atomically, dir created).
  void save(const std::string& dir, const std::string& base_model) const;
  // Reads a PEFT adapter directory for a model of shape `model`; every shape mismatch is an
  // error naming the file, the tensor and both shapes.
  static LoraAdapters load(const std::string& dir, const ModelConfig& model);

 private:
  ModelConfig model_;
  LoraConfig cfg_;
  std::vector<std::array<LoraLinear, kLoraTargets>> lin_;  // [L][7]
  std::vector<float> params_;                              // every A and B, one arena
};

// Counter-based LoRA dropout mask: element i of the input of (layer l, target t) under seed s is
// kept iff a hash of (s, l, t, i) is >= p. The forward, a checkpoint recompute and the backward
// regenerate the same mask without storing it, and a resumed run reproduces it from the seed.
inline bool lora_dropout_keep(uint64_t s, int l, LoraTarget t, int64_t i, float p) {
  uint64_t z = s ^ (static_cast<uint64_t>(l * kLoraTargets + static_cast<int>(t)) << 40) ^
               (static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return double(z >> 11) * 0x1.0p-53 >= p;
}
// out[n] = x[n]·mask/(1 − p) with the mask above (inverted dropout).
void lora_dropout(float* out, const float* x, int64_t n, uint64_t seed, int l, LoraTarget t,
                  float p);

}  // namespace edgellm
