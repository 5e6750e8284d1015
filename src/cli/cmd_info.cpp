#include <fmt/format.h>

#include <cstdlib>

#include "cli/commands.h"
#include "cli/common.h"
#include "io/packed_tensors.h"
#include "kernels/gemm_bf16.h"
#include "model/model.h"
#include "simd/target.h"
#include "util/error.h"

namespace edgellm::cli {

namespace {

// What this binary runs on this CPU: the features seen, the SIMD targets compiled in and
// available, and which implementation each kernel family uses (docs/simd.md).
nlohmann::json system_info() {
  nlohmann::json j;
#ifdef EDGELLM_NATIVE_BUILD
  j["build"] = "native (-march=native: runs only on CPUs like the build machine)";
#else
  j["build"] = "portable (SIMD kernels dispatched at run time)";
#endif
  j["cpu_features"] = simd::cpu_features();
  const char* forced = std::getenv("EDGELLM_TARGET");
  j["EDGELLM_TARGET"] = forced ? forced : "";
  j["simd_targets_compiled"] = simd::compiled_targets();
  j["simd_targets_available"] = simd::available_targets();
  const std::string t = simd::active_target();
  j["simd_target"] = t;
  nlohmann::json fam;
  for (const char* f :
       {"dot (decode GEMV, dot_row: f32/f16/bf16/q8_0/q4_0/q4_k/q6_k)",
        "exp/softmax/cross-entropy/swiglu", "rmsnorm", "rope", "attention (decode dot/axpy)",
        "f16/bf16 conversion", "packed weights (packed_dot_row / packed_decode_row)"})
    fam[f] = t;
  fam["sgemm (prefill, training)"] = "oneDNN, own dispatch: " + dnnl_isa_name();
  fam["bf16 GEMM"] = bf16_gemm_path_name(bf16_gemm_path());
  j["kernels"] = fam;
  return j;
}

void print_system(bool json) {
  const nlohmann::json j = system_info();
  if (json) return print_json(j);
  fmt::print("build: {}\n", j["build"].get<std::string>());
  fmt::print("cpu features: {}\n", j["cpu_features"].get<std::string>());
  auto list = [](const nlohmann::json& a) {
    std::string s;
    for (const auto& x : a) {
      if (!s.empty()) s += ' ';
      s += x.get<std::string>();
    }
    return s;
  };
  fmt::print("simd targets compiled: {}\n", list(j["simd_targets_compiled"]));
  fmt::print("simd targets available on this CPU: {}\n", list(j["simd_targets_available"]));
  fmt::print("simd target in use: {}{}\n", j["simd_target"].get<std::string>(),
             j["EDGELLM_TARGET"].get<std::string>().empty() ? " (best available)"
                                                            : " (forced by EDGELLM_TARGET)");
  fmt::print("kernel families:\n");
  for (const auto& [k, v] : j["kernels"].items())
    fmt::print("  {:<62} {}\n", k, v.get<std::string>());
}

}  // namespace

void register_info(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "print a checkpoint's configuration and tensors");
  auto a = std::make_shared<ModelArgs>();
  auto tensors = std::make_shared<bool>(false);
  auto system = std::make_shared<bool>(false);
  add_model_args(cmd, *a, false);
  cmd->get_option("--model")->required(false);
  cmd->add_flag("--tensors", *tensors, "list every tensor");
  cmd->add_flag("--system", *system,
                "print the CPU features, SIMD targets and the implementation each kernel family "
                "uses (no model needed)");
  cmd->callback([a, tensors, system] {
    if (*system) return print_system(a->json);
    if (a->model.empty()) fail("[info] --model is required (or --system)");
    Model m(load_checkpoint(a->model));
    const Checkpoint& ck = m.checkpoint();
    const ModelConfig& c = ck.config;
    nlohmann::json j;
    j["path"] = ck.path;
    j["format"] = format_name(ck.format);
    j["config"] = c.to_hf_json();
    j["n_params"] = c.n_params();
    j["weight_bytes"] = m.weight_bytes();
    std::map<std::string, int64_t> by_dtype;
    for (const Tensor& t : ck.tensors.all()) by_dtype[dtype_name(t.dtype)] += t.numel();
    j["params_by_dtype"] = by_dtype;
    // The OpenMP wait policy this process runs with (main.cpp sets PASSIVE unless the user chose).
    const char* wp = std::getenv("OMP_WAIT_POLICY");
    j["omp_wait_policy"] = wp ? wp : "";
    // Per-layer bits, sparsity and true stored bytes (every part of every packed tensor).
    const nlohmann::json storage = storage_summary(ck);
    j["storage"] = storage;
    if (ck.compression.is_object())
      for (const char* k : {"policy", "provenance"})
        if (ck.compression.contains(k)) j["compression"][k] = ck.compression[k];
    auto tensor_json = [](const Tensor& t) {
      nlohmann::json e = {{"name", t.name},
                          {"dtype", dtype_name(t.dtype)},
                          {"shape", t.shape},
                          {"bytes", t.nbytes}};
      if (t.dtype == DType::Packed) {
        e["format"] = t.packed->format().name();
        e["kept"] = t.packed->kept();
      }
      return e;
    };
    if (*tensors)
      for (const Tensor& t : ck.tensors.all()) j["tensors"].push_back(tensor_json(t));
    if (a->json) return print_json(j);
    fmt::print("{} ({})\n", ck.path, format_name(ck.format));
    fmt::print("  arch {}  dim {}  hidden {}  layers {}  heads {}/{} (head_dim {})  vocab {}\n",
               arch_name(c.arch), c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads,
               c.head_dim, c.vocab_size);
    fmt::print("  context {}  rope_theta {}{}  norm_eps {}  head {}\n", c.max_seq_len, c.rope_theta,
               c.rope_scaling.enabled ? " (llama3 scaling)" : "", c.norm_eps,
               c.tied_embeddings ? "tied" : "untied");
    fmt::print("  {:.2f} M parameters, {:.1f} MB of weights\n", c.n_params() / 1e6,
               m.weight_bytes() / 1e6);
    for (const auto& [dt, n] : by_dtype) fmt::print("    {:>6}: {} values\n", dt, n);
    // The per-layer record (model/config.h LayerConfig), when anything is compressed or marked.
    if (!c.layers_json().is_null()) {
      fmt::print("  per layer (bits: parameter-weighted mean, float linears as 16):\n");
      for (int l = 0; l < c.n_layers; ++l) {
        const LayerConfig& lc = c.layers[l];
        auto desc = [](const LinearFormat& f) {
          std::string d = f.bits ? fmt::format("{}b/{}", f.bits, quant_scheme_name(f.scheme))
                                 : std::string("float");
          if (f.group) d += fmt::format("/g{}", f.group);
          if (f.sparsity > 0) d += fmt::format("/sp{:.2f}", f.sparsity);
          if (f.nm_m) d += fmt::format("/{}:{}", f.nm_n, f.nm_m);
          return d;
        };
        bool same = true;
        for (const LinearFormat& f : lc.linear) same &= f == lc.linear[0];
        std::string lin = same ? " all=" + desc(lc.linear[0]) : "";
        for (int i = 0; i < kLinears && !same; ++i)
          lin += fmt::format(" {}={}", linear_name(static_cast<LinearId>(i)), desc(lc.linear[i]));
        fmt::print("    layer {:>3}: {:5.2f} bits, sparsity {:.3f}{}{}{}\n", l, c.mean_bits(l),
                   c.mean_sparsity(l), lc.has_exit ? ", exit" : "",
                   lc.lora_rank ? fmt::format(", lora r{}", lc.lora_rank) : "", lin);
      }
    }
    fmt::print("  stored: {} bytes of tensors = {:.4f} bits/weight; linears {:.4f} bits/weight\n",
               storage["tensor_bytes"].get<size_t>(), storage["bits_per_weight"].get<double>(),
               storage["linear_bits_per_weight"].get<double>());
    if (ck.compression.is_object()) {
      if (ck.compression.contains("policy"))
        fmt::print("  compression policy: {}\n", ck.compression["policy"].dump());
      fmt::print("  {:>5} {:>5} {:>8} {:>12} {:>10}  {}\n", "layer", "bits", "sparsity", "bytes",
                 "bits/w", "format");
      for (const auto& l : storage["layers"])
        fmt::print("  {:>5} {:>5.2f} {:>8.4f} {:>12} {:>10.4f}  {}\n", l["layer"].get<int>(),
                   l["bits"].get<double>(), l["sparsity"].get<double>(), l["bytes"].get<size_t>(),
                   l["bits_per_weight"].get<double>(), l["format"].get<std::string>());
    }
    if (*tensors)
      for (const Tensor& t : ck.tensors.all()) {
        const nlohmann::json e = tensor_json(t);
        fmt::print("  {:<50} {:>6} {:<18} {:>10} B  {}\n", t.name, dtype_name(t.dtype),
                   t.shape_str(), t.nbytes, e.value("format", ""));
      }
  });
}

}  // namespace edgellm::cli
