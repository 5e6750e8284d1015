// Format-independent parts of checkpoint handling: the RoPE row permutation and the shape check
// every reader runs before returning.
#include <fmt/format.h>

#include <cstring>
#include <vector>

#include "io/checkpoint.h"
#include "io/tensor_walk.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {

const char* format_name(CheckpointFormat f) {
  switch (f) {
    case CheckpointFormat::Llama2c:
      return "llama2c";
    case CheckpointFormat::HfSafetensors:
      return "safetensors";
    case CheckpointFormat::Gguf:
      return "gguf";
  }
  return "?";
}

namespace {

// HF's convert_llama_weights_to_hf.py reorders each head's rows from interleaved pairs
// (row 2i+s, s in {0,1}) to halves (row s*hd/2 + i). `to_hf` selects the direction. A 1-D tensor
// (a bias) is treated as a column of scalars.
Tensor permute_rows(const Tensor& t, int n_heads, bool to_hf) {
  if (t.shape.empty() || t.shape.size() > 2)
    fail("[rope] tensor '{}': cannot permute rows of shape {}", t.name, t.shape_str());
  const int64_t R = t.shape[0];
  if (n_heads <= 0 || R % n_heads != 0 || (R / n_heads) % 2 != 0)
    fail("[rope] tensor '{}': {} rows do not split into {} heads of even size", t.name, R, n_heads);
  const int64_t hd = R / n_heads, half = hd / 2;
  // Output row r takes source row src_of(r).
  auto src_of = [&](int64_t r) {
    const int64_t h = r / hd, k = r % hd;
    if (to_hf) return h * hd + 2 * (k % half) + k / half;  // HF row s*half+i <- inter 2i+s
    return h * hd + (k % 2) * half + k / 2;                // inter row 2i+s <- HF s*half+i
  };
  if (t.dtype == DType::Packed) {
    auto w = std::make_shared<const PackedWeight>(permute_packed_rows(t.packed->view(), src_of));
    return make_packed_tensor(t.name, std::move(w), t.packed->kept());
  }
  const size_t rb =
      t.shape.size() == 2 ? dtype_row_bytes(t.dtype, t.shape[1]) : dtype_row_bytes(t.dtype, 1);
  if (dtype_is_quantized(t.dtype) && t.shape.size() == 1)
    fail("[rope] tensor '{}': a 1-D tensor cannot be {}", t.name, dtype_name(t.dtype));
  EDGELLM_CHECK(rb * static_cast<size_t>(R) == t.nbytes, "tensor {} nbytes {}", t.name, t.nbytes);
  Tensor out = make_owned_tensor(t.name, t.dtype, t.shape);
  auto* dst = const_cast<uint8_t*>(out.data);
  for (int64_t r = 0; r < R; ++r)
    std::memcpy(dst + static_cast<size_t>(r) * rb, t.data + static_cast<size_t>(src_of(r)) * rb,
                rb);
  return out;
}

// The layer index a tensor name refers to ("model.layers.7.mlp..." or GGUF's "blk.7...."), or -1.
int64_t layer_of(const std::string& name) {
  for (const char* key : {"model.layers.", "blk."}) {
    if (name.rfind(key, 0) != 0) continue;
    const size_t b = std::strlen(key);
    size_t e = b;
    int64_t l = 0;
    while (e < name.size() && e - b < 10 && name[e] >= '0' && name[e] <= '9')
      l = l * 10 + (name[e++] - '0');
    if (e > b && e < name.size() && name[e] == '.') return l;
  }
  return -1;
}

}  // namespace

LinearFormat stored_linear_format(DType t) {
  LinearFormat f;
  switch (t) {
    case DType::Q8_0:
      f.bits = 8, f.group = 32, f.scheme = QuantScheme::Sym;
      break;
    case DType::Q4_0:
      f.bits = 4, f.group = 32, f.scheme = QuantScheme::Sym;
      break;
    case DType::Q4_K:
      f.bits = 4, f.group = 32, f.scheme = QuantScheme::Asym;
      break;
    case DType::Q6_K:
      f.bits = 6, f.group = 16, f.scheme = QuantScheme::Sym;
      break;
    default:
      break;
  }
  return f;
}

void fill_linear_formats(Checkpoint& ck) {
  ModelConfig& c = ck.config;
  c.layers.resize(c.n_layers);
  for (int l = 0; l < c.n_layers; ++l)
    for (int i = 0; i < kLinears; ++i) {
      const auto t = static_cast<LinearId>(i);
      const std::string name = fmt::format("model.layers.{}.{}.{}.weight", l,
                                           i < 4 ? "self_attn" : "mlp", linear_name(t));
      const Tensor* w = ck.tensors.find(name);
      // Packed linears carry their own format (io/packed_tensors.h apply_layer_configs).
      if (!w || !dtype_is_quantized(w->dtype) || w->dtype == DType::Packed) continue;
      const LinearFormat s = stored_linear_format(w->dtype);
      LinearFormat& f = c.layers[l].at(t);
      f.bits = s.bits;
      f.group = s.group;
      f.scheme = s.scheme;
    }
}

Tensor permute_hf_to_interleaved(const Tensor& t, int n_heads) {
  return permute_rows(t, n_heads, false);
}
Tensor permute_interleaved_to_hf(const Tensor& t, int n_heads) {
  return permute_rows(t, n_heads, true);
}

void validate_tensors(const Checkpoint& ck) {
  const char* fmt_name = format_name(ck.format);
  for (const TensorSpec& s : model_tensor_specs(ck.config)) {
    const Tensor* t = ck.tensors.find(s.name);
    if (!t)
      fail("[{}] {}: missing tensor '{}' (expected shape [{}])", fmt_name, ck.path, s.name,
           fmt::join(s.shape, ", "));
    if (t->shape != s.shape)
      fail("[{}] {}: tensor '{}': expected shape [{}], found {}", fmt_name, ck.path, s.name,
           fmt::join(s.shape, ", "), t->shape_str());
    const bool vector_role = s.role == TensorRole::Norm || s.role == TensorRole::Bias;
    if (vector_role && dtype_is_quantized(t->dtype))
      fail("[{}] {}: tensor '{}': {} must be stored unquantized, found {}", fmt_name, ck.path,
           s.name, s.role == TensorRole::Norm ? "a norm" : "a bias", dtype_name(t->dtype));
    if (t->dtype == DType::I32 || t->dtype == DType::U8)
      fail("[{}] {}: tensor '{}': integer dtype {} is not a weight type", fmt_name, ck.path, s.name,
           dtype_name(t->dtype));
    if (t->dtype == DType::Packed) {
      // The embedding is read by row lookups, not GEMMs; an untied head is a GEMM like a linear.
      if (s.role != TensorRole::Linear && s.role != TensorRole::Head)
        fail("[{}] {}: tensor '{}': only the linears and an untied head may be packed", fmt_name,
             ck.path, s.name);
      EDGELLM_CHECK(t->packed != nullptr && t->packed->rows() == s.shape[0] &&
                        t->packed->cols() == s.shape[1] && t->nbytes == t->packed->bytes().total(),
                    "packed tensor {} inconsistent", s.name);
      continue;
    }
    const int64_t cols = t->cols();
    const size_t want = dtype_row_bytes(t->dtype, cols) * static_cast<size_t>(t->numel() / cols);
    EDGELLM_CHECK(t->nbytes == want, "tensor {}: nbytes {} != {}", s.name, t->nbytes, want);
    EDGELLM_CHECK(t->data != nullptr || want == 0, "tensor {} has no data", s.name);
  }
  // A config declaring fewer layers than the file holds would otherwise load a truncated model
  // without a word (the missing-tensor check above catches the opposite case).
  for (const Tensor& t : ck.tensors.all()) {
    const int64_t l = layer_of(t.name);
    if (l >= ck.config.n_layers)
      fail("[{}] {}: tensor '{}' belongs to layer {} but the config declares {} layers", fmt_name,
           ck.path, t.name, l, ck.config.n_layers);
  }
}

void check_finite_tensors(const Checkpoint& ck, bool drop_pages) {
  for (const Tensor& t : ck.tensors.all()) {
    if (t.dtype == DType::I32 || t.dtype == DType::U8) continue;
    if (t.dtype == DType::Packed) {
      // Codes are integers; the fp16 scales are what can go bad.
      const ByteSpan sc = t.packed->parts().scales;
      const int64_t i = first_nonfinite(DType::F16, sc.data, static_cast<int64_t>(sc.size / 2));
      if (i >= 0)
        fail("[{}] {}: packed tensor '{}' {} holds a non-finite scale at index {}",
             format_name(ck.format), ck.path, t.name, t.shape_str(), i);
      continue;
    }
    const int64_t i = first_nonfinite(t.dtype, t.data, t.numel());
    if (drop_pages) drop_resident_pages(t.data, t.nbytes);
    if (i < 0) continue;
    const int64_t cols = t.cols();
    std::vector<float> row(static_cast<size_t>(cols));
    const size_t rb = dtype_row_bytes(t.dtype, cols);
    decode_row(t.dtype, t.data + static_cast<size_t>(i / cols) * rb, row.data(), cols);
    fail("[{}] {}: tensor '{}' {} holds a non-finite value ({}) at element {} (row {}, column {})",
         format_name(ck.format), ck.path, t.name, t.shape_str(), row[static_cast<size_t>(i % cols)],
         i, i / cols, i % cols);
  }
}

}  // namespace edgellm
