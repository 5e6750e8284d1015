#include "compress/compress_model.h"

#include <fmt/format.h>

#include <cmath>
#include <memory>
#include <vector>

#include "io/packed_tensors.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {

LinearPlan uniform_plan(const CompressSpec& spec, bool head) {
  spec.validate("uniform plan");
  return [spec, head](const TensorSpec& s) {
    return s.role == TensorRole::Linear || head ? std::optional<CompressSpec>(spec) : std::nullopt;
  };
}

LinearPlan with_head(LinearPlan plan, const CompressSpec& head) {
  head.validate("head plan");
  return [plan = std::move(plan), head](const TensorSpec& s) {
    return s.role == TensorRole::Head ? std::optional<CompressSpec>(head) : plan(s);
  };
}

CompressSpec head_spec(const CompressSpec& base) {
  CompressSpec h = base;
  h.quantizer = Quantizer::Rtn;
  h.pruner = Pruner::None;
  h.sparsity = {};
  return h;
}

nlohmann::json spec_json(const CompressSpec& s) {
  nlohmann::json j = {{"bits", s.bits},
                      {"group", s.group},
                      {"scheme", scheme_name(s.scheme)},
                      {"quantizer", quantizer_name(s.quantizer)},
                      {"pruner", pruner_name(s.pruner)}};
  if (s.sparsity.nm())
    j["nm"] = {s.sparsity.n, s.sparsity.m};
  else
    j["sparsity"] = s.sparsity.p;
  if (s.quantizer == Quantizer::Gptq) {
    j["act_order"] = s.act_order;
    j["percdamp"] = s.percdamp;
    j["block"] = s.block;
  }
  return j;
}

Checkpoint compress_checkpoint(const Checkpoint& src, const LinearPlan& plan,
                               const LinearCalib& calib, const nlohmann::json& record,
                               const LinearDone& done, bool drop_source_pages) {
  validate_tensors(src);
  Checkpoint out;
  out.config = src.config;
  out.format = CheckpointFormat::HfSafetensors;
  out.path = src.path + " (compressed)";
  out.gguf_tokenizer = src.gguf_tokenizer;
  out.compression = record.is_object() ? record : nlohmann::json::object();
  nlohmann::json& entries = out.compression["tensors"];
  entries = nlohmann::json::object();
  std::vector<float> w;  // one linear's fp32 rows: the working set, reused
  for (const TensorSpec& s : model_tensor_specs(src.config)) {
    const Tensor& t = src.tensors.get(s.name, src.path);
    std::optional<CompressSpec> spec;
    if (s.role == TensorRole::Linear || s.role == TensorRole::Head) spec = plan(s);
    if (!spec) {
      out.tensors.add(t);  // shares the source's bytes
      continue;
    }
    spec->validate(s.name);
    const CalibStats* st = calib ? calib(s) : nullptr;
    const int64_t rows = s.shape[0], cols = s.shape[1];
    w.resize(static_cast<size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r) decode_tensor_row(t, r, w.data() + r * cols);
    CompressedLinear c = compress_linear(w.data(), rows, cols, *spec, st);
    // The source matrix is never read again (a calibrated run has already run its layer dense):
    // un-map its pages, so that the peak holds the packed output and one layer of the source,
    // not the whole source (2.2 GB for a bf16 TinyLlama).
    if (drop_source_pages) drop_resident_pages(t.data, t.nbytes);
    const CompressReport& rep = c.report;
    nlohmann::json e = {{"spec", spec_json(*spec)}, {"weight_mse", rep.weight_mse}};
    if (std::isfinite(rep.output_mse)) e["output_mse"] = rep.output_mse;
    if (spec->needs_hessian()) e["damp"] = rep.damp, e["dead_cols"] = rep.dead_cols;
    entries[s.name] = e;
    auto packed = std::make_shared<const PackedWeight>(std::move(c.packed));
    out.tensors.add(make_packed_tensor(s.name, std::move(packed), rep.nnz));
    if (done) done(s, rep, out.tensors.get(s.name, out.path));
  }
  apply_layer_configs(out);
  return out;
}

void write_compressed_model(const Checkpoint& src, const LinearPlan& plan, const std::string& dir,
                            const LinearCalib& calib, const nlohmann::json& record,
                            DType dense_dtype) {
  save_hf_dir(compress_checkpoint(src, plan, calib, record), dir, dense_dtype);
}

}  // namespace edgellm
