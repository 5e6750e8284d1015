// compress: per-layer allocation (policy over the profile's sensitivities) and compression of
// every decoder linear with compress_linear (docs/compression.md). Until packed models load,
// the compressed weights are written dequantized (fake-quantized, fp32) as an HF directory: the
// accuracy the later stages measure is that of the compressed weights, exactly; the memory the
// packed form would take is reported from compress_linear's exact byte counts. Data-aware
// algorithms (GPTQ, Wanda, SparseGPT) need each linear's inputs from the layer taps; until those
// land they fall back to RTN / magnitude, and allocation.json says so.
#include <filesystem>

#include "compress/compress_linear.h"
#include "compress/policy.h"
#include "eval/model_files.h"
#include "pipeline/stages.h"
#include "train/full_params.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm::pipeline {

namespace {

const char* kLinears[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                          "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                          "mlp.down_proj"};

void run(StageContext& ctx) {
  const CompressSection& c = ctx.cfg.compress;
  auto base = load_base_model(ctx.cfg);
  const ModelConfig& mc = base->config();
  const int L = mc.n_layers;
  const nlohmann::json prof = ctx.read_json("profile", "profile.json");
  nlohmann::json notes = nlohmann::json::array(), not_run = nlohmann::json::array();
  nlohmann::json alloc = {{"policy_requested", c.policy}};

  std::string policy = c.policy;
  const bool have_sens = prof["sensitivity"].is_object();
  if (policy != "uniform" && policy != "none" && !have_sens) {
    not_run.push_back(fmt::format(
        "policy '{}': needs per-layer sensitivity, which profiling could not measure yet; the "
        "uniform allocation was used",
        policy));
    policy = "uniform";
  }
  PolicyInputs in;
  in.B = c.bits;
  in.P = c.sparsity;
  in.seed = ctx.cfg.tune.seed;
  if (have_sens) {
    in.s_quant = prof["sensitivity"]["s_quant"].get<std::vector<double>>();
    in.s_prune = prof["sensitivity"]["s_prune"].get<std::vector<double>>();
  } else {
    in.s_quant.assign(static_cast<size_t>(L), 1.0);
    in.s_prune.assign(static_cast<size_t>(L), 1.0);
  }
  Allocation a;
  if (policy == "none") {
    a.bits.assign(static_cast<size_t>(L), 16);
    a.sparsity.assign(static_cast<size_t>(L), 0.0);
  } else {
    a = allocate(policy, in);
  }
  alloc["policy"] = policy;
  alloc["bits"] = a.bits;
  alloc["sparsity"] = a.sparsity;
  alloc["infeasible"] = a.infeasible;

  CompressSpec spec;
  spec.group = c.group;
  spec.quantizer = quantizer_from_name(c.quantizer, "compress.quantizer");
  spec.pruner = pruner_from_name(c.pruner, "compress.pruner");
  // Without taps there are no linear inputs: the data-free algorithms stand in.
  if (spec.quantizer == Quantizer::Gptq) {
    spec.quantizer = Quantizer::Rtn;
    not_run.push_back("quantizer 'gptq': needs each linear's inputs (layer taps); RTN was used");
  }
  if (spec.pruner == Pruner::Wanda || spec.pruner == Pruner::SparseGpt) {
    not_run.push_back(fmt::format(
        "pruner '{}': needs each linear's inputs (layer taps); magnitude pruning was used",
        c.pruner));
    spec.pruner = Pruner::Magnitude;
  }
  alloc["quantizer"] = quantizer_name(spec.quantizer);
  alloc["pruner"] = pruner_name(spec.pruner);

  bool any = false;
  for (int l = 0; l < L; ++l) any |= a.bits[l] < 16 || a.sparsity[l] > 0;
  alloc["compressed"] = any;
  nlohmann::json layers = nlohmann::json::array();
  size_t packed_total = 0, dense_total = 0;
  if (any) {
    FullParams fp(*base);
    for (int l = 0; l < L; ++l) {
      CompressSpec s = spec;
      s.bits = a.bits[l];
      s.sparsity = {a.sparsity[l], 0, 0};
      if (s.sparsity.p == 0) s.pruner = Pruner::None;
      size_t bytes = 0, dense = 0;
      double se = 0;
      int64_t numel = 0;
      for (const char* lin : kLinears) {
        const std::string name = fmt::format("model.layers.{}.{}.weight", l, lin);
        const size_t off = fp.offset(name);
        int64_t rows = 0, cols = 0;
        for (const auto& e : fp.entries())
          if (e.name == name) rows = e.shape[0], cols = e.shape[1];
        float* w = fp.params().data() + off;
        CompressedLinear cl = compress_linear(w, rows, cols, s, nullptr);
        const std::vector<float> wh = cl.q.dequantize();
        std::copy(wh.begin(), wh.end(), w);
        bytes += cl.report.bytes.total();
        dense += static_cast<size_t>(rows * cols) * 2;  // the bf16 original
        se += cl.report.weight_mse * double(rows * cols);
        numel += rows * cols;
      }
      packed_total += bytes;
      dense_total += dense;
      layers.push_back({{"layer", l},
                        {"bits", a.bits[l]},
                        {"sparsity", a.sparsity[l]},
                        {"packed_bytes", bytes},
                        {"bits_per_weight", 8.0 * double(bytes) / double(numel)},
                        {"weight_mse", se / double(numel)}});
      ctx.progress("layers", l + 1, L);
    }
    const std::string md = ctx.dir + "/model";
    save_hf_dir(fp.checkpoint(), md);
    copy_tokenizer_into(ctx.cfg.model.tokenizer.empty()
                            ? find_tokenizer_file(ctx.cfg.model.path, base->checkpoint())
                            : ctx.cfg.model.tokenizer,
                        md);
    notes.push_back(
        "weights are stored dequantized (fp32, fake-quantized) until packed models load; "
        "packed_bytes is what the packed form stores (codes, scales, index), exactly");
    not_run.push_back("packed compressed model (tuning and evaluation on packed weights)");
  }
  alloc["layers"] = layers;
  alloc["packed_bytes"] = packed_total;
  alloc["dense_bf16_bytes"] = dense_total;
  alloc["notes"] = notes;
  alloc["not_run"] = not_run;
  write_file_atomic(ctx.dir + "/allocation.json", alloc.dump(2) + "\n");
  ctx.log(any ? fmt::format("policy {}: {} linears compressed, {:.2f} MiB packed (bf16 {:.2f} MiB)",
                            policy, 7 * L, packed_total / 1048576.0, dense_total / 1048576.0)
              : "nothing to compress (16 bits, no sparsity)");
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
  s.run = run;
  return s;
}

}  // namespace edgellm::pipeline
