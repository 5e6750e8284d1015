#include "io/tensor_walk.h"

#include <fmt/format.h>

#include <cstdlib>
#include <utility>

namespace edgellm {

int linear_index(const TensorSpec& s) {
  if (s.role != TensorRole::Linear) return -1;
  for (int i = 0; i < kLinears; ++i)
    if (s.name.find(std::string(".") + linear_name(static_cast<LinearId>(i)) + ".") !=
        std::string::npos)
      return i;
  return -1;
}

std::vector<TensorSpec> model_tensor_specs(const ModelConfig& c) {
  const int64_t C = c.dim, V = c.vocab_size, FF = c.hidden_dim, Q = c.q_dim(), KV = c.kv_dim();
  std::vector<TensorSpec> s;
  s.push_back({"model.embed_tokens.weight", {V, C}, TensorRole::Embedding});
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    s.push_back({p + "input_layernorm.weight", {C}, TensorRole::Norm, l});
    s.push_back({p + "self_attn.q_proj.weight", {Q, C}, TensorRole::Linear, l, c.n_heads});
    s.push_back({p + "self_attn.k_proj.weight", {KV, C}, TensorRole::Linear, l, c.n_kv_heads});
    s.push_back({p + "self_attn.v_proj.weight", {KV, C}, TensorRole::Linear, l});
    if (c.qkv_bias) {
      s.push_back({p + "self_attn.q_proj.bias", {Q}, TensorRole::Bias, l, c.n_heads});
      s.push_back({p + "self_attn.k_proj.bias", {KV}, TensorRole::Bias, l, c.n_kv_heads});
      s.push_back({p + "self_attn.v_proj.bias", {KV}, TensorRole::Bias, l});
    }
    s.push_back({p + "self_attn.o_proj.weight", {C, Q}, TensorRole::Linear, l});
    s.push_back({p + "post_attention_layernorm.weight", {C}, TensorRole::Norm, l});
    s.push_back({p + "mlp.gate_proj.weight", {FF, C}, TensorRole::Linear, l});
    s.push_back({p + "mlp.up_proj.weight", {FF, C}, TensorRole::Linear, l});
    s.push_back({p + "mlp.down_proj.weight", {C, FF}, TensorRole::Linear, l});
  }
  s.push_back({"model.norm.weight", {C}, TensorRole::Norm});
  if (!c.tied_embeddings) s.push_back({"lm_head.weight", {V, C}, TensorRole::Head});
  return s;
}

namespace {

// Per-layer suffix pairs (HF after "model.layers.N.", GGUF after "blk.N.").
const std::pair<const char*, const char*> kLayerNames[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
};

const std::pair<const char*, const char*> kGlobalNames[] = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
};

// Splits "<prefix><N>.<rest>" into (N, rest); false if `name` does not have that form.
bool split_layer(const std::string& name, const std::string& prefix, int* layer,
                 std::string* rest) {
  if (name.compare(0, prefix.size(), prefix) != 0) return false;
  size_t i = prefix.size(), j = i;
  while (j < name.size() && name[j] >= '0' && name[j] <= '9') ++j;
  if (j == i || j >= name.size() || name[j] != '.' || j - i > 6) return false;
  *layer = std::atoi(name.substr(i, j - i).c_str());
  *rest = name.substr(j + 1);
  return true;
}

}  // namespace

std::string hf_to_gguf_name(const std::string& hf) {
  for (const auto& [h, g] : kGlobalNames)
    if (hf == h) return g;
  int l;
  std::string rest;
  if (split_layer(hf, "model.layers.", &l, &rest))
    for (const auto& [h, g] : kLayerNames)
      if (rest == h) return fmt::format("blk.{}.{}", l, g);
  return "";
}

std::string gguf_to_hf_name(const std::string& gguf) {
  for (const auto& [h, g] : kGlobalNames)
    if (gguf == g) return h;
  int l;
  std::string rest;
  if (split_layer(gguf, "blk.", &l, &rest))
    for (const auto& [h, g] : kLayerNames)
      if (rest == g) return fmt::format("model.layers.{}.{}", l, h);
  return "";
}

}  // namespace edgellm
