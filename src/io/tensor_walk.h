// The model is data: the one list of tensors a ModelConfig implies (names, shapes, roles), in
// file order. Loading (validate_tensors), saving (HF and GGUF writers), random-model generation
// and name mapping between formats all walk this list, so a new tensor kind is added in one place.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace edgellm {

enum class TensorRole : uint8_t {
  Embedding,  // [V, C]
  Norm,       // [C] RMSNorm gain
  Linear,     // [out, in]
  Bias,       // [out]
  Head,       // [V, C] untied lm_head
};

struct TensorSpec {
  std::string name;            // HF name (tensor_set.h conventions)
  std::vector<int64_t> shape;  // outermost first
  TensorRole role;
  int layer = -1;      // decoder layer, -1 for embeddings / final norm / head
  int rope_heads = 0;  // q/k weight or bias: heads stacked in rows (RoPE permutation); else 0
  bool is_matrix() const { return shape.size() == 2; }
};

// Every tensor `c` implies, in the order llama.cpp and HF writers use: embeddings, then per
// layer (input norm, q, k, v, [biases], o, post-attention norm, gate, up, down), final norm, head.
std::vector<TensorSpec> model_tensor_specs(const ModelConfig& c);

// Which of a layer's seven linears a decoder-linear tensor is (its "<name>_proj" component), or
// -1 for any other tensor.
int linear_index(const TensorSpec& s);

// HF name <-> GGUF name ("model.layers.3.self_attn.q_proj.weight" <-> "blk.3.attn_q.weight").
// Return "" when the name has no counterpart.
std::string hf_to_gguf_name(const std::string& hf);
std::string gguf_to_hf_name(const std::string& gguf);

}  // namespace edgellm
