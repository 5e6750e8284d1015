// A named collection of stored tensors: what every reader produces and every writer consumes.
//
// Conventions (all formats are converted to these at load and back at save):
//   * names are Hugging Face LLaMA names: model.embed_tokens.weight,
//     model.layers.{i}.self_attn.{q,k,v,o}_proj.{weight,bias}, model.layers.{i}.mlp.
//     {gate,up,down}_proj.weight, model.layers.{i}.{input,post_attention}_layernorm.weight,
//     model.norm.weight, lm_head.weight (absent when tied);
//   * shapes are row-major, outermost first: a linear is [out_features, in_features], each row
//     one output channel stored contiguously (GGUF's ne[] is the reverse of this);
//   * RoPE layout is Meta's interleaved pairs (x[2i], x[2i+1]). HF checkpoints (rotate-halves
//     layout) have their q/k rows (and q/k biases) permuted at load and permuted back at save;
//   * a compressed linear is one Tensor of DType::Packed whose parts (codes, scales, zeros,
//     index) are described by Tensor::packed; however a file stores them (io/packed_tensors.h),
//     in memory it is one tensor under its HF name.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "packed/packed_tensor.h"
#include "tensor/dtype.h"

namespace edgellm {

struct Tensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;     // outermost first
  const uint8_t* data = nullptr;  // into a file mapping or `owner`'s buffer
  size_t nbytes = 0;
  std::shared_ptr<const void> owner;  // keeps the mapping or buffer alive
  // DType::Packed only: the compressed weight [rows, cols] (packed/packed_tensor.h), its parts in
  // memory `owner` keeps alive. `data` is null and `nbytes` counts every stored byte of every part.
  std::shared_ptr<const PackedTensor> packed;

  int64_t numel() const;
  int64_t rows() const { return shape.size() >= 2 ? shape[0] : 1; }
  int64_t cols() const { return shape.empty() ? 1 : shape.back(); }
  std::string shape_str() const;  // "[768, 2048]"
};

// Makes a tensor owning a fresh zero-filled buffer of the right size for (dtype, shape).
Tensor make_owned_tensor(std::string name, DType dtype, std::vector<int64_t> shape);
// A Packed tensor owning `w` (kept: weights the pruner kept, −1 = every stored value).
Tensor make_packed_tensor(std::string name, std::shared_ptr<const PackedWeight> w,
                          int64_t kept = -1);
// Decodes row r of a 2-D tensor (a 1-D tensor is row 0) of any dtype, Packed included, into
// dst[cols]: the one row adapter for code that reads whole tensors (conversion, export, full
// fine-tuning's trainable copy).
void decode_tensor_row(const Tensor& t, int64_t r, float* dst);
// Copies `src` (any dtype) into a new F32 tensor.
Tensor to_f32(const Tensor& src);
// Re-encodes `src` into dtype `to` row by row (through f32), e.g. F32 -> Q8_0 for GGUF export;
// a Packed source is decoded row by row (`to` cannot be Packed: that takes compress_linear).
Tensor convert_tensor(const Tensor& src, DType to);

class TensorSet {
 public:
  void add(Tensor t);  // throws on duplicate names
  bool has(const std::string& name) const { return index_.count(name) != 0; }
  const Tensor* find(const std::string& name) const;
  // Throws "[source] missing tensor 'name'" if absent.
  const Tensor& get(const std::string& name, const std::string& source) const;
  Tensor& mutable_get(const std::string& name);
  const std::vector<Tensor>& all() const { return tensors_; }
  size_t size() const { return tensors_.size(); }

 private:
  std::vector<Tensor> tensors_;
  std::map<std::string, size_t> index_;
};

}  // namespace edgellm
