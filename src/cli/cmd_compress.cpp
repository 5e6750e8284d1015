// edgellm compress: a checkpoint -> a compressed model directory (packed linears + compression
// record, docs/formats.md). Today: the uniform allocation with calibration-free quantizer/pruner
// (rtn, magnitude). The calibrated ones (gptq, wanda, sparsegpt) and the policies (--policy,
// --calib) plug into the same compress_checkpoint call once the layer taps provide per-linear
// statistics: a LinearCalib callback and a per-linear LinearPlan.
#include <fmt/format.h>

#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "compress/compress_model.h"
#include "eval/model_files.h"
#include "io/packed_tensors.h"
#include "util/atomic_dir.h"
#include "util/error.h"

namespace edgellm::cli {

namespace {

SparsitySpec parse_sparsity(double p, const std::string& nm) {
  SparsitySpec s;
  if (nm.empty()) {
    s.p = p;
    return s;
  }
  const auto colon = nm.find(':');
  try {
    if (colon == std::string::npos) throw std::invalid_argument(nm);
    size_t a = 0, b = 0;
    s.n = std::stoi(nm.substr(0, colon), &a);
    s.m = std::stoi(nm.substr(colon + 1), &b);
    if (a != colon || b != nm.size() - colon - 1) throw std::invalid_argument(nm);
  } catch (const std::exception&) {
    fail("[compress] --nm '{}': expected N:M, e.g. 2:4", nm);
  }
  if (p > 0) fail("[compress] --nm {} and --sparsity {} both given: choose one", nm, p);
  return s;
}

}  // namespace

void register_compress(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "compress", "quantize and prune every linear into a compressed (packed) model directory");
  struct Args : ModelArgs {
    std::string out, quantizer = "rtn", pruner, scheme = "sym", nm, dtype = "f32";
    int bits = 4, group = 0;
    double sparsity = 0;
    bool head = false;
  };
  auto a = std::make_shared<Args>();
  add_model_args(cmd, *a);
  cmd->add_option("--out,-o", a->out, "output directory (config.json + model.safetensors)")
      ->required();
  cmd->add_option("--bits", a->bits, "weight bits 2..8, or 16 = no quantization (prune only)");
  cmd->add_option("--sparsity", a->sparsity, "fraction of each linear's weights pruned, [0, 1)");
  cmd->add_option("--nm", a->nm, "N:M semi-structured sparsity instead, e.g. 2:4");
  cmd->add_option("--quantizer", a->quantizer, "rtn (gptq needs --calib: not available yet)");
  cmd->add_option("--pruner", a->pruner,
                  "magnitude (default when sparsity is asked for); wanda|sparsegpt need --calib "
                  "(not available yet)");
  cmd->add_option("--scheme", a->scheme, "sym (LLM-QAT levels) | asym (min-max grid + zero point)");
  cmd->add_option("--group", a->group, "input columns per scale: 0 = one per output row, or 32..");
  cmd->add_option("--dtype", a->dtype,
                  "storage of the unpacked matrices (embeddings): f32|f16|bf16");
  cmd->add_flag("--head", a->head,
                "compress an untied lm_head too (default: decoder linears only)");
  cmd->callback([a] {
    apply_threads(*a);
    CompressSpec spec;
    spec.bits = a->bits;
    spec.group = a->group;
    if (a->scheme != "sym" && a->scheme != "asym")
      fail("[compress] --scheme '{}': expected sym or asym", a->scheme);
    spec.scheme = a->scheme == "sym" ? QuantScheme::Sym : QuantScheme::Asym;
    spec.quantizer = quantizer_from_name(a->quantizer, "--quantizer");
    spec.sparsity = parse_sparsity(a->sparsity, a->nm);
    spec.pruner = pruner_from_name(
        a->pruner.empty() ? (spec.sparsity.any() ? "magnitude" : "none") : a->pruner, "--pruner");
    spec.validate("edgellm compress");
    if (spec.bits == 16 && !spec.sparsity.any())
      fail("[compress] --bits 16 with no sparsity leaves nothing to compress");
    // Calibrated methods need the inputs of every linear from the layer taps.
    if (spec.needs_hessian() || spec.pruner == Pruner::Wanda)
      fail(
          "[compress] --quantizer {} --pruner {} needs calibration statistics (--calib), which "
          "this build does not collect yet; use --quantizer rtn with --pruner magnitude",
          quantizer_name(spec.quantizer), pruner_name(spec.pruner));
    const DType dense = dtype_from_name(a->dtype, "--dtype");
    const Checkpoint src = load_checkpoint(a->model);
    const nlohmann::json record = {
        {"policy", {{"name", "uniform"}, {"spec", spec_json(spec)}, {"head", a->head}}},
        {"provenance",
         {{"tool", "edgellm compress"},
          {"source", src.path},
          {"source_format", format_name(src.format)},
          {"calibration", "none"}}}};
    int done = 0;
    size_t layer_bytes = 0;
    int64_t layer_params = 0;
    const Checkpoint ck = compress_checkpoint(
        src, uniform_plan(spec, a->head), {}, record,
        [&](const TensorSpec& s, const CompressReport& r) {
          ++done;
          // Report per layer, after its last linear (down_proj); the head alone.
          if (s.role == TensorRole::Head) {
            if (!a->json)
              std::fprintf(stderr, "[compress] lm_head: %.4f bits/weight\n", r.bits_per_weight);
            return;
          }
          layer_bytes += r.bytes.total();
          layer_params += s.shape[0] * s.shape[1];
          if (s.name.find("down_proj") == std::string::npos) return;
          if (!a->json)
            std::fprintf(stderr, "[compress] layer %d/%d: %.4f bits/weight\n", s.layer + 1,
                         src.config.n_layers, 8.0 * double(layer_bytes) / double(layer_params));
          layer_bytes = 0;
          layer_params = 0;
        });
    const std::string tok =
        a->tokenizer.empty() ? find_tokenizer_file(a->model, src) : a->tokenizer;
    AtomicDir out(a->out);
    save_hf_dir(ck, out.path(), dense);
    copy_tokenizer_into(tok, out.path());
    out.commit();
    nlohmann::json sum = storage_summary(ck);
    if (a->json) {
      sum["out"] = a->out;
      sum["spec"] = spec_json(spec);
      return print_json(sum);
    }
    fmt::print("compressed {} -> {} ({} linears, uniform {})\n", src.path, a->out, done,
               spec.format().name());
    fmt::print("  linears: {} weights in {} bytes = {:.4f} bits/weight\n",
               sum["linear_params"].get<int64_t>(), sum["linear_bytes"].get<size_t>(),
               sum["linear_bits_per_weight"].get<double>());
    fmt::print("  model:   {} weights in {} bytes = {:.4f} bits/weight (every stored byte)\n",
               sum["params"].get<int64_t>(), sum["tensor_bytes"].get<size_t>(),
               sum["bits_per_weight"].get<double>());
  });
}

}  // namespace edgellm::cli
