// Early-exit heads of an adaptive-layer-tuning run (PAPER.md §2, issue 9) and the one place
// their files are written and read.
//
// Exit i reads the residual stream after depths[i] layers and applies an exit head: RMSNorm with
// a gain, then an LM head, exactly as the model's own final norm + lm_head (model/layer.h
// head_norm/head_logits), the same in training and at inference. An exit at depth L IS the
// model's own head (nothing of it is trained). Every other exit has its own parameters:
//   shared : its own RMSNorm gain [C] (initialised from the model's final norm); the LM head is
//            the model's, frozen and shared by all exits (no V×C copy per exit);
//   cloned : its own gain [C] and a full fp32 LM head [V, C] copied from the model's (the
//            official code's choice: V·C trainable values per exit).
//
// On disk, beside the PEFT adapter of the same run:
//   exit_heads.safetensors : exits.{i}.norm.weight [C] and (cloned) exits.{i}.lm_head.weight
//                            [V, C], F32, for each exit i with its own parameters;
//   edgellm_exits.json     : {"exit_depths": [...], "head_mode": "shared"|"cloned",
//                            "lora_mode": "branch"|"cumulative", "window": m, "schedule": ...,
//                            "n_layers": L, "dim": C, "vocab_size": V}.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/model.h"

namespace edgellm {

enum class ExitHeadMode : uint8_t { Shared, Cloned };
enum class ExitLoraMode : uint8_t { Branch, Cumulative };
ExitHeadMode exit_head_mode_from_name(const std::string& s);  // shared | cloned
ExitLoraMode exit_lora_mode_from_name(const std::string& s);  // branch | cumulative
const char* exit_head_mode_name(ExitHeadMode m);
const char* exit_lora_mode_name(ExitLoraMode m);

struct ExitConfig {
  std::vector<int> depths;  // strictly increasing, within 1..L
  ExitHeadMode head_mode = ExitHeadMode::Shared;
  ExitLoraMode lora_mode = ExitLoraMode::Branch;
  int window = 0;        // layers back-propagated per step (m)
  std::string schedule;  // exit schedule of the run (recorded only)
};

class ExitHeads {
 public:
  // Parameters of every exit sized for `model` (zeros; init_from fills them). Validates depths.
  ExitHeads(const ModelConfig& model, ExitConfig cfg);

  const ExitConfig& config() const { return cfg_; }
  int n_exits() const { return static_cast<int>(cfg_.depths.size()); }
  int depth(int i) const { return cfg_.depths[i]; }
  // Whether exit i has parameters of its own (false: depth L, the model's head).
  bool own(int i) const { return cfg_.depths[i] < model_.n_layers; }
  // Gains from the model's final norm; cloned heads from its lm_head (decoded to fp32).
  void init_from(const Model& m);

  // The head exit i applies (views into params() or the model's weights).
  HeadWeights weights(int i, const Model& m) const;
  // All exit parameters in one fp32 arena (the optimizer's flat vector) and where exit i's lie:
  // gain at norm_offset(i) [C], cloned head at head_offset(i) [V, C]; both only when own(i).
  std::vector<float>& params() { return params_; }
  const std::vector<float>& params() const { return params_; }
  size_t norm_offset(int i) const { return norm_off_[i]; }
  size_t head_offset(int i) const { return head_off_[i]; }
  size_t params_of(int i) const;  // values exit i owns (0 for the model's head)
  // Values params() holds for this configuration, without allocating them (memory planning).
  static size_t count_params(const ModelConfig& model, const ExitConfig& cfg) {
    return layout(model, cfg, nullptr, nullptr);
  }

  // Writes dir/exit_heads.safetensors and dir/edgellm_exits.json (atomically, dir created).
  void save(const std::string& dir) const;
  // Whether dir holds an exit config (edgellm_exits.json).
  static bool present(const std::string& dir);
  // Reads both files for a model of shape `model`; every missing tensor, wrong shape or bad
  // config value is an error naming the file, the field and the value.
  static ExitHeads load(const std::string& dir, const ModelConfig& model);

 private:
  // Offsets of every exit's gain and head in params(); returns the total. The constructor and
  // count_params share it.
  static size_t layout(const ModelConfig& model, const ExitConfig& cfg,
                       std::vector<size_t>* norm_off, std::vector<size_t>* head_off);

  ModelConfig model_;
  ExitConfig cfg_;
  std::vector<float> params_;
  std::vector<size_t> norm_off_, head_off_;
};

}  // namespace edgellm
