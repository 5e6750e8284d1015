// A loaded LLaMA-family model: config and views of every weight, in whatever dtype the
// checkpoint stores them (mmapped where the format allows). Immutable once loaded, so any number
// of inference or training states can share it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "kernels/matmul.h"
#include "model/config.h"

namespace edgellm {

struct LayerWeights {
  WeightView wq, wk, wv, wo;         // [NH*HD, C], [KV*HD, C], [KV*HD, C], [C, NH*HD]
  WeightView w_gate, w_up, w_down;   // [FF, C], [FF, C], [C, FF]
  const float* attn_norm = nullptr;  // [C]
  const float* ffn_norm = nullptr;   // [C]
  const float* bq = nullptr;         // [NH*HD] Qwen2 only, else null
  const float* bk = nullptr;         // [KV*HD]
  const float* bv = nullptr;         // [KV*HD]

  const WeightView& linear(LinearId t) const {
    const WeightView* v[kLinears] = {&wq, &wk, &wv, &wo, &w_gate, &w_up, &w_down};
    return *v[static_cast<int>(t)];
  }
};

// An exit head: RMSNorm gain and LM head. The model's own (final norm + lm_head) serves the last
// layer and, shared, any early exit; a cloned exit head brings its own.
struct HeadWeights {
  const float* norm = nullptr;  // [C]
  WeightView lm_head;           // [V, C]
};

struct LoadOptions {
  // true (default): weights are read through the file mapping once and copied into one
  // anonymous, 64-byte-aligned arena, and the mapping is released. Measured on this machine
  // (2-core EPYC, 134M F32, tg128): 110-126 tok/s from the arena vs 75-92 tok/s streaming the
  // same bytes from the page-cache mapping, so decode-bound runs want the copy.
  // false: the Model reads the tensors where they are: the file mapping (`--mmap`: instant load,
  // shared page cache, models larger than RAM) or buffers the caller keeps updating (full
  // fine-tuning's trainable copy).
  bool copy_weights = true;
  // If set, 2-D weight matrices stored in another type are re-encoded to this one at load (e.g.
  // BF16: half the memory of an F32 checkpoint and the bf16 GEMM path; Q8_0 for decode speed).
  // Norms and biases stay fp32; packed (compressed) linears stay packed.
  std::optional<DType> matrix_dtype;
};

class Model {
 public:
  // Loads any supported checkpoint (io/checkpoint.h) and checks it against its config.
  static std::shared_ptr<Model> load(const std::string& path, const LoadOptions& opt = {});
  explicit Model(Checkpoint ck, const LoadOptions& opt = {});

  const ModelConfig& config() const { return ck_.config; }
  const Checkpoint& checkpoint() const { return ck_; }
  const LayerWeights& layer(int l) const { return layers_[l]; }
  const WeightView& tok_embedding() const { return tok_embedding_; }  // [V, C]
  const WeightView& lm_head() const { return lm_head_; }              // [V, C]
  const float* final_norm() const { return final_norm_; }             // [C]
  HeadWeights head() const { return {final_norm_, lm_head_}; }
  // Bytes of weights as stored (what decode streams per token; every part of a packed tensor).
  size_t weight_bytes() const;
  // The weights are read through the checkpoint's file mapping (LoadOptions::copy_weights off,
  // no re-encoding): dropping their pages (drop_resident_pages) only un-maps them, whereas on a
  // copy it would push live memory to swap.
  bool weights_mapped() const { return weights_mapped_; }

 private:
  Checkpoint ck_;
  std::vector<LayerWeights> layers_;
  WeightView tok_embedding_, lm_head_;
  const float* final_norm_ = nullptr;
  bool weights_mapped_ = false;
  void copy_weights_to_arena();
  std::vector<std::vector<float>> f32_copies_;  // norms/biases stored as f16/bf16, widened once
};

WeightView weight_view(const Tensor& t);

}  // namespace edgellm
