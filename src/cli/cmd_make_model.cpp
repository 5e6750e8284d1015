// edgellm make-model: a random-weight model of a named shape, for tests and benchmarks. Written
// tensor by tensor (a 7B F32 model never sits in memory).
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "io/model_writer.h"
#include "tokenizer/tokenizer.h"
#include "util/atomic_dir.h"
#include "util/error.h"

namespace edgellm::cli {

void register_make_model(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "make-model",
      "write a random-weight model (N(0, 0.02) linears, unit norms) of a named or given shape");
  struct Args {
    std::string shape, out, dtype = "f32", gguf, gguf_dtype = "f32", tokenizer;
    uint64_t seed = 0;
    float stddev = 0.02f;
    int threads = 0;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--shape", a->shape,
                  "stories260K|134M|tinyllama-1.1b|llama2-7b|llama-7b, or "
                  "dim=..,layers=..,heads=..,kv_heads=..,ff=..,vocab=..,ctx=..[,tied=1]")
      ->required();
  cmd->add_option("--out,-o", a->out, "HF output directory (config.json + model.safetensors)");
  cmd->add_option("--seed", a->seed, "random seed (same seed, same weights in every format)");
  cmd->add_option("--std", a->stddev, "standard deviation of the random weights");
  cmd->add_option("--dtype", a->dtype, "HF matrix dtype: f32|f16|bf16")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
  cmd->add_option("--gguf", a->gguf, "also (or only) write a GGUF file here");
  cmd->add_option("--gguf-dtype", a->gguf_dtype,
                  "GGUF matrix type: f32|f16|bf16|q8_0|q4_0|q4_k|q6_k");
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer to embed in the GGUF metadata");
  cmd->add_option("--threads,-t", a->threads, "threads (default: all cores)");
  cmd->add_flag("--json", a->json, "machine-readable JSON on stdout");
  cmd->callback([a] {
    if (a->out.empty() && a->gguf.empty()) fail("[make-model] give --out DIR and/or --gguf PATH");
    ModelArgs ma;
    ma.threads = a->threads;
    apply_threads(ma);
    const ModelConfig c = ModelConfig::parse_shape(a->shape);
    const ModelSource src = random_source(a->seed, a->stddev);
    nlohmann::json j = {{"shape", a->shape}, {"seed", a->seed}, {"n_params", c.n_params()}};
    if (!a->out.empty()) {
      AtomicDir out(a->out);
      write_hf_dir(c, src, out.path(), dtype_from_name(a->dtype, "--dtype"));
      out.commit();
      j["hf"] = {{"path", a->out}, {"dtype", a->dtype}};
    }
    if (!a->gguf.empty()) {
      const nlohmann::json tok = a->tokenizer.empty()
                                     ? nlohmann::json()
                                     : tokenizer_to_gguf(*load_tokenizer(a->tokenizer));
      write_gguf(c, src, a->gguf, dtype_from_name(a->gguf_dtype, "--gguf-dtype"), tok);
      j["gguf"] = {{"path", a->gguf}, {"dtype", a->gguf_dtype}};
    }
    if (a->json) return print_json(j);
    fmt::print("{} ({:.1f} M parameters, seed {}){}{}\n", a->shape, c.n_params() / 1e6, a->seed,
               a->out.empty() ? "" : fmt::format(" -> {} ({})", a->out, a->dtype),
               a->gguf.empty() ? "" : fmt::format(" -> {} ({})", a->gguf, a->gguf_dtype));
  });
}

}  // namespace edgellm::cli
