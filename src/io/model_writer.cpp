#include "io/model_writer.h"

#include <filesystem>

#include "io/packed_tensors.h"
#include "io/safetensors.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {

namespace fs = std::filesystem;

ModelSource checkpoint_source(const Checkpoint& ck) {
  const Checkpoint* p = &ck;
  return [p](const TensorSpec& s) {
    TensorSource t;
    t.stored = &p->tensors.get(s.name, format_name(p->format));
    return t;
  };
}

namespace {

TensorOut make_out(const ModelSource& src, const TensorSpec& s, std::string out_name, DType to,
                   RowMap map) {
  TensorSource ts = src(s);
  if (ts.stored) {
    if (ts.stored->shape != s.shape)
      fail("[write] tensor '{}': expected shape [{}], found {}", s.name, fmt::join(s.shape, ", "),
           ts.stored->shape_str());
    return tensor_out(*ts.stored, to, std::move(out_name), std::move(map));
  }
  EDGELLM_CHECK(ts.gen, "tensor source for {} has neither data nor generator", s.name);
  return generated_tensor_out(std::move(out_name), to, s.shape, ts.gen, std::move(map));
}

}  // namespace

DType gguf_type_for_format(const WeightFormat& f, int64_t cols) {
  // A symmetric grid of <= 4 bits with groups covering whole 32-blocks is exactly a Q4_0 grid
  // (tensor_out reuses its scales), at Q4_K's 4.5 bits per weight: no second rounding.
  const bool q4_0_exact =
      f.quantized() && f.bits <= 4 && f.scheme == QuantScheme::Sym && f.group_cols(cols) % 32 == 0;
  const DType want = q4_0_exact    ? DType::Q4_0
                     : f.bits <= 4 ? DType::Q4_K
                     : f.bits <= 6 ? DType::Q6_K
                     : f.bits <= 8 ? DType::Q8_0
                                   : DType::F16;
  return gguf_matrix_type(want, cols);
}

DType gguf_matrix_type(DType want, int64_t cols) {
  DType t = want;
  if ((t == DType::Q4_K || t == DType::Q6_K) && cols % 256 != 0)
    t = t == DType::Q4_K ? DType::Q4_0 : DType::Q8_0;
  if ((t == DType::Q4_0 || t == DType::Q8_0) && cols % 32 != 0) t = DType::F16;
  return t;
}

std::vector<TensorOut> hf_tensor_outs(const ModelConfig& c, const ModelSource& src, DType dtype,
                                      nlohmann::json* packed) {
  if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::BF16)
    fail("[hf] cannot write {} tensors to safetensors (f32, f16, bf16)", dtype_name(dtype));
  std::vector<TensorOut> outs;
  for (const TensorSpec& s : model_tensor_specs(c)) {
    RowMap map = s.rope_heads > 0 ? interleaved_to_hf_rows(s.shape[0], s.rope_heads) : RowMap{};
    TensorSource ts = src(s);
    if (ts.stored && ts.stored->dtype == DType::Packed) {
      if (ts.stored->shape != s.shape)
        fail("[write] tensor '{}': expected shape [{}], found {}", s.name, fmt::join(s.shape, ", "),
             ts.stored->shape_str());
      for (TensorOut& o : packed_tensor_outs(*ts.stored, s.name, map)) outs.push_back(std::move(o));
      if (packed) (*packed)[s.name] = packed_tensor_entry(*ts.stored);
      continue;
    }
    outs.push_back(make_out(src, s, s.name, s.is_matrix() ? dtype : DType::F32, std::move(map)));
  }
  return outs;
}

std::vector<TensorOut> gguf_tensor_outs(const ModelConfig& c, const ModelSource& src, DType dtype) {
  std::vector<TensorOut> outs;
  for (const TensorSpec& s : model_tensor_specs(c)) {
    // GGUF llama keeps Meta's interleaved layout; qwen2 keeps HF's (llama.cpp ropes it NeoX-style).
    RowMap map = s.rope_heads > 0 && c.arch == Arch::Qwen2
                     ? interleaved_to_hf_rows(s.shape[0], s.rope_heads)
                     : RowMap{};
    DType to = s.is_matrix() ? gguf_matrix_type(dtype, s.shape[1]) : DType::F32;
    if (const TensorSource ts = src(s); ts.stored && ts.stored->dtype == DType::Packed)
      to = gguf_type_for_format(ts.stored->packed->format(), s.shape[1]);
    outs.push_back(make_out(src, s, hf_to_gguf_name(s.name), to, std::move(map)));
  }
  return outs;
}

void write_hf_dir(const ModelConfig& c, const ModelSource& src, const std::string& dir, DType dtype,
                  const nlohmann::json& compression) {
  nlohmann::json packed = nlohmann::json::object();
  std::vector<TensorOut> outs = hf_tensor_outs(c, src, dtype, &packed);
  fs::create_directories(dir);
  nlohmann::json cfg = c.to_hf_json();
  cfg["torch_dtype"] = dtype == DType::F16    ? "float16"
                       : dtype == DType::BF16 ? "bfloat16"
                                              : "float32";
  nlohmann::json meta = {{"format", "pt"}};
  if (!packed.empty()) {
    // The record of the checkpoint (policy, provenance, ...) with per-tensor entries describing
    // exactly what this file stores.
    // Per-tensor fields the compressor added (spec, errors) are kept beside the format fields.
    nlohmann::json record = compression.is_object() ? compression : nlohmann::json::object();
    nlohmann::json tensors = nlohmann::json::object();
    for (const auto& [name, e] : packed.items()) {
      nlohmann::json x = nlohmann::json::object();
      if (record.contains("tensors") && record["tensors"].contains(name) &&
          record["tensors"][name].is_object())
        x = record["tensors"][name];
      x.update(e);
      tensors[name] = x;
    }
    record["version"] = kCompressionVersion;
    record["tensors"] = tensors;
    meta[kCompressionMetaKey] = record.dump();
  }
  write_safetensors((fs::path(dir) / "model.safetensors").string(), outs, meta);
  write_file_atomic((fs::path(dir) / "config.json").string(), cfg.dump(2) + "\n");
}

}  // namespace edgellm
