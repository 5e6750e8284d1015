#include "model/model.h"

#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "util/error.h"

namespace edgellm {

WeightView weight_view(const Tensor& t) {
  EDGELLM_CHECK(t.shape.size() == 2, "tensor '{}' is not 2-D: {}", t.name, t.shape_str());
  WeightView v;
  v.dtype = t.dtype;
  v.rows = t.shape[0];
  v.cols = t.shape[1];
  if (t.dtype == DType::Packed) {
    EDGELLM_CHECK(t.packed != nullptr, "packed tensor '{}' without parts", t.name);
    v.packed = t.packed->view();
    return v;
  }
  v.data = t.data;
  v.row_bytes = dtype_row_bytes(t.dtype, v.cols);
  return v;
}

std::shared_ptr<Model> Model::load(const std::string& path, const LoadOptions& opt) {
  return std::make_shared<Model>(load_checkpoint(path), opt);
}

void Model::copy_weights_to_arena() {
  constexpr size_t kAlign = 64;
  auto align = [](size_t n) { return (n + kAlign - 1) / kAlign * kAlign; };
  size_t total = 0;
  for (const Tensor& t : ck_.tensors.all()) {
    if (t.dtype != DType::Packed) {
      total += align(t.nbytes);
      continue;
    }
    const PackedParts& p = t.packed->parts();
    total += align(p.codes.size) + align(p.scales.size) + align(p.zeros.size) + align(p.index.size);
  }
  void* mem = std::aligned_alloc(kAlign, std::max(align(total), kAlign));
  if (!mem) fail("[model] {}: cannot allocate {} bytes for the weights", ck_.path, total);
  std::shared_ptr<void> arena(mem, std::free);
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  uint8_t* dst = static_cast<uint8_t*>(mem);
  // Copies n bytes from src into the arena and drops the source pages from this process right
  // away so peak RSS stays ~1x the weights. MADV_PAGEOUT never loses data: mapped file pages are
  // simply dropped, and on heap memory (tensors the loader already copied, e.g. permuted q/k) it
  // is a no-op without swap.
  auto move_in = [&](const uint8_t* src, size_t n) {
    uint8_t* at = dst;
    if (n) std::memcpy(at, src, n);
    const uintptr_t b = (reinterpret_cast<uintptr_t>(src) + page - 1) / page * page;
    const uintptr_t e = (reinterpret_cast<uintptr_t>(src) + n) / page * page;
    if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_PAGEOUT);
    dst += align(n);
    return at;
  };
  for (const Tensor& t : ck_.tensors.all()) {
    Tensor& m = ck_.tensors.mutable_get(t.name);
    if (m.dtype == DType::Packed) {  // each part into the arena, the same layout re-viewed
      const PackedTensor& pt = *m.packed;
      PackedParts parts = pt.parts();
      for (ByteSpan* s : {&parts.codes, &parts.scales, &parts.zeros, &parts.index})
        s->data = move_in(s->data, s->size);
      m.packed = std::make_shared<const PackedTensor>(pt.format(), pt.rows(), pt.cols(), parts,
                                                      ck_.path + ": " + m.name, pt.kept());
    } else {
      m.data = move_in(m.data, m.nbytes);
    }
    m.owner = arena;
  }
}

Model::Model(Checkpoint ck, const LoadOptions& opt) : ck_(std::move(ck)) {
  validate_tensors(ck_);
  // Weights that stay mapped are not kept resident by the scan (the copy below re-reads them
  // anyway when they are copied).
  weights_mapped_ = !opt.copy_weights && !opt.matrix_dtype;
  check_finite_tensors(ck_, /*drop_pages=*/weights_mapped_);
  if (opt.matrix_dtype) {
    for (const Tensor& t : ck_.tensors.all()) {
      // Compressed linears stay as compressed (re-encoding them would dequantize them whole).
      if (t.shape.size() != 2 || t.dtype == *opt.matrix_dtype || t.dtype == DType::Packed) continue;
      if (t.cols() % dtype_block_size(*opt.matrix_dtype) != 0)
        fail("[model] {}: tensor '{}' {} cannot be stored as {} (rows of {} values, blocks of {})",
             ck_.path, t.name, t.shape_str(), dtype_name(*opt.matrix_dtype), t.cols(),
             dtype_block_size(*opt.matrix_dtype));
      ck_.tensors.mutable_get(t.name) = convert_tensor(t, *opt.matrix_dtype);
    }
    fill_linear_formats(ck_);  // values re-encoded to a block type now sit on its grid
  }
  if (opt.copy_weights) copy_weights_to_arena();
  const ModelConfig& c = ck_.config;
  const std::string& src = ck_.path;
  // 1-D tensors (norms, biases) are read as fp32; widen them once if stored narrower.
  auto vec = [&](const std::string& name) -> const float* {
    const Tensor& t = ck_.tensors.get(name, src);
    if (t.dtype == DType::F32) return reinterpret_cast<const float*>(t.data);
    std::vector<float> v(static_cast<size_t>(t.numel()));
    decode_row(t.dtype, t.data, v.data(), t.numel());
    f32_copies_.push_back(std::move(v));
    return f32_copies_.back().data();
  };
  auto mat = [&](const std::string& name) { return weight_view(ck_.tensors.get(name, src)); };
  f32_copies_.reserve(4 * c.n_layers + 2);
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    LayerWeights w;
    w.wq = mat(p + "self_attn.q_proj.weight");
    w.wk = mat(p + "self_attn.k_proj.weight");
    w.wv = mat(p + "self_attn.v_proj.weight");
    w.wo = mat(p + "self_attn.o_proj.weight");
    w.w_gate = mat(p + "mlp.gate_proj.weight");
    w.w_up = mat(p + "mlp.up_proj.weight");
    w.w_down = mat(p + "mlp.down_proj.weight");
    w.attn_norm = vec(p + "input_layernorm.weight");
    w.ffn_norm = vec(p + "post_attention_layernorm.weight");
    if (c.qkv_bias) {
      w.bq = vec(p + "self_attn.q_proj.bias");
      w.bk = vec(p + "self_attn.k_proj.bias");
      w.bv = vec(p + "self_attn.v_proj.bias");
    }
    layers_.push_back(w);
  }
  tok_embedding_ = mat("model.embed_tokens.weight");
  lm_head_ = c.tied_embeddings ? tok_embedding_ : mat("lm_head.weight");
  final_norm_ = vec("model.norm.weight");
}

size_t Model::weight_bytes() const {
  size_t n = 0;
  for (const Tensor& t : ck_.tensors.all()) n += t.nbytes;
  return n;
}

}  // namespace edgellm
