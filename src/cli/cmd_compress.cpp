// edgellm compress: a checkpoint -> a compressed model directory (packed linears + compression
// record, docs/formats.md). Allocation by policy (compress/layer_allocation.h: luc, luc-literal,
// official, uniform, random, budget, file) over a sensitivity profile read from --sensitivity or
// measured on the fly; with --calib the linears are compressed layer by layer on the hidden
// states of the already compressed prefix (eval/calibrated_compress.h), which GPTQ, SparseGPT
// and Wanda need.
#include <fmt/format.h>

#include <cstdio>
#include <set>

#include "cli/calib_args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "compress/compress_model.h"
#include "compress/layer_allocation.h"
#include "eval/calibrated_compress.h"
#include "eval/calibration.h"
#include "eval/model_files.h"
#include "eval/sensitivity.h"
#include "io/packed_tensors.h"
#include "util/atomic_dir.h"
#include "util/error.h"
#include "util/json_field.h"
#include "util/mapped_file.h"

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
    bool head = false, act_order = false, weighted = false, relative = false;
    std::string policy, sensitivity, allocation, granularity = "layer";
    double target_bpw = 0, p_min = 0.0, p_max = 0.95;
    int64_t target_bytes = 0;
    CalibOptions calib;
    std::vector<int> profile_bits{3, 4, 5, 8};
    std::vector<double> profile_sparsity{0.1, 0.3, 0.5, 0.7};
  };
  auto a = std::make_shared<Args>();
  add_model_args(cmd, *a);
  add_calib_args(cmd, a->calib);
  cmd->add_option("--out,-o", a->out, "output directory (config.json + model.safetensors)")
      ->required();
  cmd->add_option("--bits", a->bits, "base weight bits B 2..8, or 16 = no quantization");
  cmd->add_option("--sparsity", a->sparsity, "mean sparsity P of the decoder linears, [0, 1)");
  cmd->add_option("--nm", a->nm, "N:M semi-structured sparsity instead (uniform only), e.g. 2:4");
  cmd->add_option("--quantizer", a->quantizer, "rtn | gptq (gptq needs --calib)");
  cmd->add_option("--pruner", a->pruner,
                  "magnitude | wanda | sparsegpt (default: sparsegpt with --calib, else "
                  "magnitude; wanda/sparsegpt need --calib)");
  cmd->add_option("--scheme", a->scheme, "sym (LLM-QAT levels) | asym (min-max grid + zero point)");
  cmd->add_option("--group", a->group, "input columns per scale: 0 = one per output row, or 32..");
  cmd->add_flag("--act-order", a->act_order,
                "GPTQ: quantize columns by decreasing Hessian diagonal");
  cmd->add_option("--policy", a->policy,
                  "luc | luc-literal | official | uniform | random | budget | file (default: luc "
                  "with --calib or --sensitivity, else uniform)");
  cmd->add_option("--sensitivity", a->sensitivity,
                  "sens.json from `edgellm profile` (default: profiled on the fly from --calib)");
  cmd->add_option("--allocation", a->allocation,
                  "--policy file: JSON {\"layers\": [{\"bits\": b, \"sparsity\": p}, ...], "
                  "\"linears\": {\"layers.3.mlp.down_proj\": {\"bits\": b}}} (either key)");
  cmd->add_option("--target-bpw", a->target_bpw,
                  "--policy budget: bits per weight of the decoder linears (default: luc's size)");
  cmd->add_option("--target-bytes", a->target_bytes,
                  "--policy budget: stored bytes of the decoder linears (instead of --target-bpw)");
  cmd->add_option("--budget-granularity", a->granularity,
                  "--policy budget: layer (one bits/sparsity per layer) | linear (one per linear, "
                  "on the profile's per-linear curves)");
  cmd->add_option("--p-min", a->p_min, "smallest per-layer sparsity (luc)");
  cmd->add_option("--p-max", a->p_max, "largest per-layer sparsity (luc, budget)");
  cmd->add_flag("--weighted", a->weighted, "mean sparsity weighted by parameter count");
  cmd->add_flag("--relative-sensitivity", a->relative,
                "divide each layer's sensitivity by the mean square of its dense output (the "
                "paper's absolute MSE grows with depth)");
  cmd->add_option("--profile-bits", a->profile_bits, "on-the-fly profile: bit-widths (B added)")
      ->delimiter(',');
  cmd->add_option("--profile-sparsity", a->profile_sparsity, "on-the-fly profile: sparsities")
      ->delimiter(',');
  cmd->add_option("--dtype", a->dtype,
                  "storage of the unpacked matrices (embeddings): f32|f16|bf16");
  cmd->add_flag("--head", a->head,
                "compress an untied lm_head too, dense by RTN at --bits/--group/--scheme (any "
                "policy; default: decoder linears only)");
  cmd->callback([a] {
    apply_threads(*a);
    CompressSpec spec;
    spec.bits = a->bits;
    spec.group = a->group;
    if (a->scheme != "sym" && a->scheme != "asym")
      fail("[compress] --scheme '{}': expected sym or asym", a->scheme);
    spec.scheme = a->scheme == "sym" ? QuantScheme::Sym : QuantScheme::Asym;
    spec.quantizer = quantizer_from_name(a->quantizer, "--quantizer");
    spec.act_order = a->act_order;
    spec.sparsity = parse_sparsity(a->sparsity, a->nm);
    const bool have_calib = !a->calib.source.empty();
    spec.pruner = pruner_from_name(
        a->pruner.empty()
            ? (spec.sparsity.any() ? (have_calib ? "sparsegpt" : "magnitude") : "none")
            : a->pruner,
        "--pruner");
    if (spec.bits == 16) spec.quantizer = Quantizer::Rtn;
    spec.validate("edgellm compress");
    if (spec.bits == 16 && !spec.sparsity.any())
      fail("[compress] --bits 16 with no sparsity leaves nothing to compress");
    std::string policy = a->policy;
    if (policy.empty())
      policy = (have_calib || !a->sensitivity.empty()) && !spec.sparsity.nm() ? "luc" : "uniform";
    static const std::set<std::string> kPolicies{"luc",    "luc-literal", "official", "uniform",
                                                 "random", "budget",      "file"};
    if (!kPolicies.count(policy))
      fail("[compress] --policy '{}': expected luc|luc-literal|official|uniform|random|budget|file",
           policy);
    if ((a->target_bpw > 0 || a->target_bytes > 0) && policy != "budget")
      fail(
          "[compress] --target-bpw / --target-bytes set the budget policy's size (got --policy {})",
          policy);
    if (a->target_bpw > 0 && a->target_bytes > 0)
      fail("[compress] --target-bpw {} and --target-bytes {} both given: choose one", a->target_bpw,
           a->target_bytes);
    if (a->granularity != "layer" && (a->granularity != "linear" || policy != "budget"))
      fail(
          "[compress] --budget-granularity '{}': expected layer, or linear with --policy budget "
          "(got --policy {})",
          a->granularity, policy);
    if (spec.sparsity.nm() && policy != "uniform")
      fail("[compress] --nm {} works with --policy uniform only (got {})", a->nm, policy);
    const bool needs_stats = spec.needs_hessian() || spec.pruner == Pruner::Wanda;
    if (needs_stats && !have_calib)
      fail(
          "[compress] --quantizer {} --pruner {} needs calibration statistics: give --calib "
          "FILE|data-free",
          quantizer_name(spec.quantizer), pruner_name(spec.pruner));
    const bool needs_profile = policy != "uniform" && policy != "file";
    if (needs_profile && a->sensitivity.empty() && !have_calib)
      fail(
          "[compress] --policy {} needs sensitivities: --sensitivity sens.json or --calib to "
          "profile on the fly",
          policy);
    const DType dense = dtype_from_name(a->dtype, "--dtype");

    // Compress reads the model one layer at a time: mapped, with each finished layer's pages
    // dropped, the peak holds one layer of it instead of a whole copy.
    a->mmap = true;
    auto m = load_model(*a);
    const ModelConfig& mc = m->config();
    const std::string tok_file =
        a->tokenizer.empty() ? find_tokenizer_file(a->model, m->checkpoint()) : a->tokenizer;
    Calibration cal;
    if (have_calib) {
      std::unique_ptr<Tokenizer> tok;
      if (a->calib.source != "data-free") tok = load_tokenizer_for(*m, a->tokenizer);
      cal = load_calibration(*m, tok.get(), a->calib);
      cal.provenance.erase("starts");
    }

    // Sensitivities: from the file, or measured now on the same calibration windows.
    std::optional<SensitivityProfile> prof;
    std::string prof_source;
    if (needs_profile && !a->sensitivity.empty()) {
      prof =
          SensitivityProfile::from_json(read_json_file(a->sensitivity, "compress"), a->sensitivity);
      prof_source = a->sensitivity;
    } else if (needs_profile) {
      ProfileOptions po;
      po.bits = a->profile_bits;
      // B for Eq. 1, B + 1 so luc's allocation can be priced and offered to budget.
      for (int b : {spec.bits, spec.bits + 1})
        if (b <= 8 && std::find(po.bits.begin(), po.bits.end(), b) == po.bits.end())
          po.bits.push_back(b);
      std::sort(po.bits.begin(), po.bits.end());
      po.sparsity = spec.sparsity.p > 0 ? a->profile_sparsity : std::vector<double>{};
      po.scheme = spec.scheme;
      po.group = spec.group;
      po.pruner = spec.pruner == Pruner::None ? Pruner::Magnitude : spec.pruner;
      po.per_linear = a->granularity == "linear";  // 8× the layer runs: only when used
      po.progress = [&](int l, int L) {
        if (!a->json) std::fprintf(stderr, "[compress] profiling layer %d/%d\n", l, L);
      };
      prof = profile_sensitivity(*m, cal.windows, po);
      prof->model = a->model;
      prof->calibration = cal.provenance;
      prof_source = "profiled on the fly";
    }

    LayerAllocOptions ao;
    ao.policy = policy;
    ao.B = spec.bits;
    ao.P = spec.sparsity.p;
    ao.p_min = a->p_min;
    ao.p_max = a->p_max;
    ao.weighted = a->weighted;
    ao.relative = a->relative;
    ao.seed = a->calib.seed;
    ao.target_bpw = a->target_bpw;
    ao.target_bytes = a->target_bytes;
    ao.granularity = a->granularity;
    ao.base = spec;
    if (policy == "file") {
      if (a->allocation.empty()) fail("[compress] --policy file needs --allocation FILE");
      ao.file = read_json_file(a->allocation, "compress");
      ao.file_source = a->allocation;
    }
    std::optional<LayerAllocation> alloc;
    LinearPlan plan;
    if (spec.sparsity.nm()) {
      plan = uniform_plan(spec);
    } else {
      alloc = allocate_layers(mc, prof ? &*prof : nullptr, ao);
      plan = allocation_plan(*alloc, spec);
    }
    if (a->head) plan = with_head(std::move(plan), head_spec(spec));

    nlohmann::json pol = {{"name", policy},    {"spec", spec_json(spec)}, {"head", a->head},
                          {"B", spec.bits},    {"P", spec.sparsity.p},    {"p_min", a->p_min},
                          {"p_max", a->p_max}, {"weighted", a->weighted}};
    if (alloc) pol["allocation"] = alloc->to_json(mc);
    nlohmann::json record = {
        {"policy", pol},
        {"provenance",
         {{"tool", "edgellm compress"},
          {"source", a->model},
          {"source_format", format_name(m->checkpoint().format)},
          {"calibration", have_calib ? cal.provenance : nlohmann::json("none")}}}};
    if (prof) {
      record["sensitivity"] = prof->to_json();
      record["sensitivity"]["source"] = prof_source;
    }

    // Per-layer report, after each layer's last linear (down_proj).
    const int L = mc.n_layers;
    std::vector<size_t> layer_bytes(static_cast<size_t>(L), 0);
    std::vector<int64_t> layer_params(static_cast<size_t>(L), 0);
    int done = 0;
    LinearDone on_done = [&](const TensorSpec& s, const CompressReport& r, const Tensor&) {
      ++done;
      if (s.role == TensorRole::Head) {
        if (!a->json)
          std::fprintf(stderr, "[compress] lm_head: %.4f bits/weight\n", r.bits_per_weight);
        return;
      }
      layer_bytes[s.layer] += r.bytes.total();
      layer_params[s.layer] += s.shape[0] * s.shape[1];
      if (s.name.find("down_proj") != std::string::npos && !a->json)
        std::fprintf(stderr, "[compress] layer %d/%d done\n", s.layer + 1, L);
    };
    const Checkpoint ck =
        have_calib
            ? compress_model_calibrated(*m, cal.windows, plan, record, on_done)
            : compress_checkpoint(m->checkpoint(), plan, {}, record, on_done, m->weights_mapped());
    AtomicDir out(a->out);
    save_hf_dir(ck, out.path(), dense);
    copy_tokenizer_into(tok_file, out.path());
    out.commit();
    nlohmann::json sum = storage_summary(ck, dense);  // as written: matrices in --dtype
    nlohmann::json layers = nlohmann::json::array();
    for (int l = 0; l < L; ++l) {
      nlohmann::json e = {
          {"layer", l},
          {"bytes", layer_bytes[l]},
          {"params", layer_params[l]},
          {"bits_per_weight",
           layer_params[l] ? 8.0 * double(layer_bytes[l]) / double(layer_params[l]) : 0.0}};
      if (alloc) {
        const nlohmann::json& aj = pol["allocation"];
        e["bits"] = aj["bits"][l];  // the parameter-weighted mean where the linears differ
        e["sparsity"] = aj["sparsity"][l];
        if (aj.contains("linears")) e["linears"] = aj["linears"][l];
      }
      layers.push_back(e);
    }
    if (a->json) {
      sum["out"] = a->out;
      sum["spec"] = spec_json(spec);
      sum["policy"] = pol;
      sum["layers"] = layers;
      return print_json(sum);
    }
    fmt::print("compressed {} -> {} ({} linears, policy {}{})\n", a->model, a->out, done, policy,
               have_calib ? ", calibrated layer by layer" : "");
    fmt::print("{:>5} {:>5} {:>8} {:>10} {:>9}\n", "layer", "bits", "sparsity", "bytes", "bits/w");
    for (const auto& e : layers) {
      fmt::print("{:>5} {:>5.2f} {:>8.4f} {:>10} {:>9.4f}\n", e["layer"].get<int>(),
                 e.value("bits", double(spec.bits)), e.value("sparsity", spec.sparsity.p),
                 e["bytes"].get<size_t>(), e["bits_per_weight"].get<double>());
      if (!e.contains("linears")) continue;  // the layer's linears share its bits and sparsity
      std::string lin;
      for (int t = 0; t < kLinears; ++t) {
        const char* name = linear_name(static_cast<LinearId>(t));
        const nlohmann::json& x = e["linears"][name];
        lin +=
            fmt::format(" {}={}b/{:.2f}", name, x["bits"].get<int>(), x["sparsity"].get<double>());
      }
      fmt::print("       {}\n", lin);
    }
    fmt::print("  linears: {} weights in {} bytes = {:.4f} bits/weight\n",
               sum["linear_params"].get<int64_t>(), sum["linear_bytes"].get<size_t>(),
               sum["linear_bits_per_weight"].get<double>());
    fmt::print("  model:   {} weights in {} bytes = {:.4f} bits/weight (every stored byte)\n",
               sum["params"].get<int64_t>(), sum["tensor_bytes"].get<size_t>(),
               sum["bits_per_weight"].get<double>());
  });
}

}  // namespace edgellm::cli
