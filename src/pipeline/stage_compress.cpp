// compress: the per-layer allocation of the configured policy over the profile's measured
// sensitivities (compress/layer_allocation.h, priced exactly before anything is compressed), then
// calibrated compression layer by layer (eval/calibrated_compress.h: GPTQ/SparseGPT/Wanda
// statistics collected after the layers below are compressed) into a packed model directory —
// the same code path as `edgellm compress`. The later stages tune and evaluate on that packed
// model: LoRA's backward flows through the packed weights, nothing is dequantized whole.
#include <filesystem>

#include "compress/compress_model.h"
#include "compress/layer_allocation.h"
#include "compress/sensitivity.h"
#include "eval/calibrated_compress.h"
#include "eval/model_files.h"
#include "io/packed_tensors.h"
#include "pipeline/stages.h"
#include "util/atomic_dir.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm::pipeline {

namespace {

void run_compress(StageContext& ctx) {
  const CompressSection& c = ctx.cfg.compress;
  auto base = load_base_model(ctx.cfg);
  const ModelConfig& mc = base->config();
  const int L = mc.n_layers;
  nlohmann::json notes = nlohmann::json::array(), not_run = nlohmann::json::array();
  nlohmann::json alloc_json = {{"policy_requested", c.policy}, {"policy", c.policy}};
  if (c.policy == "none" || (c.bits >= 16 && c.sparsity <= 0)) {
    alloc_json["bits"] = std::vector<int>(static_cast<size_t>(L), 16);
    alloc_json["sparsity"] = std::vector<double>(static_cast<size_t>(L), 0.0);
    alloc_json["compressed"] = false;
    alloc_json["layers"] = nlohmann::json::array();
    alloc_json["notes"] = notes;
    alloc_json["not_run"] = not_run;
    write_file_atomic(ctx.dir + "/allocation.json", alloc_json.dump(2) + "\n");
    ctx.log("nothing to compress (policy none, or 16 bits and no sparsity)");
    return;
  }
  const std::string sens_path = ctx.stage_dir("profile") + "/sens.json";
  const SensitivityProfile prof =
      SensitivityProfile::from_json(nlohmann::json::parse(read_file(sens_path)), sens_path);
  const nlohmann::json calib =
      nlohmann::json::parse(read_file(ctx.stage_dir("profile") + "/calibration.json"));
  const auto windows = calib["tokens"].get<std::vector<std::vector<int32_t>>>();

  CompressSpec spec;
  spec.bits = c.bits;
  spec.group = c.group;
  spec.scheme = c.scheme == "asym" ? QuantScheme::Asym : QuantScheme::Sym;
  if (c.scheme != "sym" && c.scheme != "asym")
    fail("[compress] compress.scheme '{}' unknown (sym, asym)", c.scheme);
  spec.quantizer = quantizer_from_name(c.quantizer, "compress.quantizer");
  spec.pruner = pruner_from_name(c.pruner, "compress.pruner");
  spec.sparsity.p = c.sparsity;
  if (c.sparsity <= 0) spec.pruner = Pruner::None;
  LayerAllocOptions ao;
  ao.policy = c.policy;
  ao.B = c.bits;
  ao.P = c.sparsity;
  ao.relative = c.relative;
  ao.seed = ctx.cfg.tune.seed;
  ao.granularity = c.granularity;
  ao.target_bpw = c.target_bpw;
  ao.base = spec;
  const LayerAllocation a = allocate_layers(mc, &prof, ao);
  const LinearPlan plan = allocation_plan(a, spec);
  const nlohmann::json aj = a.to_json(mc);
  nlohmann::json record = {
      {"policy", {{"name", c.policy}, {"spec", spec_json(spec)}, {"allocation", aj}}},
      {"sensitivity", prof.to_json()},
      {"provenance", {{"tool", "edgellm pipeline"}, {"source", ctx.cfg.model.path}}}};

  std::vector<size_t> layer_bytes(static_cast<size_t>(L), 0);
  std::vector<int64_t> layer_params(static_cast<size_t>(L), 0);
  std::vector<double> layer_se(static_cast<size_t>(L), 0);
  const LinearDone done = [&](const TensorSpec& s, const CompressReport& r, const Tensor&) {
    if (s.layer < 0 || s.layer >= L) return;
    const int64_t n = s.shape[0] * s.shape[1];
    layer_bytes[s.layer] += r.bytes.total();
    layer_params[s.layer] += n;
    layer_se[s.layer] += r.weight_mse * double(n);
    if (s.name.find("down_proj") != std::string::npos) ctx.progress("layers", s.layer + 1, L);
  };
  const Checkpoint ck = compress_model_calibrated(*base, windows, plan, record, done);
  const DType written = DType::F32;  // unpacked matrices (embeddings, head) as written
  {
    AtomicDir out(ctx.dir + "/model");
    save_hf_dir(ck, out.path(), written);
    copy_tokenizer_into(ctx.cfg.model.tokenizer.empty()
                            ? find_tokenizer_file(ctx.cfg.model.path, base->checkpoint())
                            : ctx.cfg.model.tokenizer,
                        out.path());
    out.commit();
  }
  const nlohmann::json sum = storage_summary(ck, written);
  nlohmann::json layers = nlohmann::json::array();
  size_t packed_total = 0;
  for (int l = 0; l < L; ++l) {
    packed_total += layer_bytes[l];
    const double n = double(std::max<int64_t>(1, layer_params[l]));
    // bits/sparsity: the layer's own, or the parameter-weighted mean where its linears differ.
    layers.push_back({{"layer", l},
                      {"bits", aj["bits"][l]},
                      {"sparsity", aj["sparsity"][l]},
                      {"packed_bytes", layer_bytes[l]},
                      {"bits_per_weight", 8.0 * double(layer_bytes[l]) / n},
                      {"weight_mse", layer_se[l] / n}});
    if (aj.contains("linears")) layers.back()["linears"] = aj["linears"][l];
  }
  alloc_json["policy"] = a.policy;
  alloc_json["relative_sensitivity"] = a.relative;
  alloc_json["granularity"] = a.granularity;
  alloc_json["bits"] = aj["bits"];
  alloc_json["sparsity"] = aj["sparsity"];
  // [L]{name: {"bits", "sparsity"}} when a layer's linears differ (the plan stage reads it).
  if (aj.contains("linears")) alloc_json["linears"] = aj["linears"];
  alloc_json["infeasible"] = a.infeasible;
  alloc_json["quantizer"] = quantizer_name(spec.quantizer);
  alloc_json["pruner"] = pruner_name(spec.pruner);
  alloc_json["compressed"] = true;
  alloc_json["layers"] = layers;
  alloc_json["packed_bytes"] = packed_total;
  alloc_json["dense_bf16_bytes"] = static_cast<size_t>(decoder_linear_params(mc)) * 2;
  alloc_json["linear_bits_per_weight"] = sum["linear_bits_per_weight"];
  alloc_json["model_bits_per_weight"] = sum["bits_per_weight"];
  alloc_json["model_bytes"] = sum["tensor_bytes"];
  notes.push_back(fmt::format(
      "the compressed model is stored packed ({:.3f} bits per decoder-linear weight counting "
      "codes, scales, zeros and sparsity index); tuning and evaluation run on it",
      sum["linear_bits_per_weight"].get<double>()));
  alloc_json["notes"] = notes;
  alloc_json["not_run"] = not_run;
  write_file_atomic(ctx.dir + "/allocation.json", alloc_json.dump(2) + "\n");
  ctx.log(
      fmt::format("policy {}: {} linears compressed, {:.2f} MiB packed (bf16 {:.2f} MiB), "
                  "{:.3f} bits/weight",
                  a.policy, 7 * L, double(packed_total) / 1048576.0,
                  double(decoder_linear_params(mc)) * 2 / 1048576.0,
                  sum["linear_bits_per_weight"].get<double>()));
}

}  // namespace

Stage compress_stage() {
  Stage s;
  s.name = "compress";
  s.summary = "per-layer bits/sparsity allocation and compression of every decoder linear";
  s.after = {"profile"};
  s.config = [](const PipelineConfig& c) {
    const nlohmann::json j = c.to_json();
    return nlohmann::json{
        {"model", j["model"]}, {"compress", j["compress"]}, {"seed", c.tune.seed}};
  };
  s.inputs = model_inputs;
  s.run = run_compress;
  return s;
}

}  // namespace edgellm::pipeline
