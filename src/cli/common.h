// Options and output helpers shared by the subcommands.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "kernels/threads.h"
#include "model/exit_heads.h"
#include "model/lora.h"
#include "model/model.h"
#include "util/error.h"

namespace edgellm::cli {

struct ModelArgs {
  std::string model;
  std::string tokenizer;
  int threads = 0;
  bool json = false;
  bool mmap = false;
  std::string weights_as;  // re-encode weight matrices at load ("" = as stored)
};

inline void add_model_args(CLI::App* cmd, ModelArgs& a, bool with_tokenizer = true) {
  cmd->add_option("--model,-m", a.model, "checkpoint: HF directory, .gguf file or llama2.c .bin")
      ->required();
  if (with_tokenizer)
    cmd->add_option("--tokenizer", a.tokenizer,
                    "tokenizer.json / tokenizer.model / tokenizer.bin (default: found beside the "
                    "model or in its GGUF metadata)");
  cmd->add_option("--threads,-t", a.threads, "threads (default: OMP_NUM_THREADS or all cores)");
  cmd->add_flag("--json", a.json, "machine-readable JSON on stdout");
  cmd->add_flag("--mmap", a.mmap,
                "keep weights memory-mapped instead of copying them into RAM (instant load, "
                "slower decode; for models larger than memory)");
  cmd->add_option("--weights-as", a.weights_as,
                  "re-encode weight matrices at load: f32|f16|bf16|q8_0|q4_0|q4_k|q6_k (bf16: half "
                  "the memory of f32 and bf16 GEMMs for batched work)");
}

inline std::shared_ptr<Model> load_model(const ModelArgs& a) {
  LoadOptions o;
  o.copy_weights = !a.mmap;
  if (!a.weights_as.empty()) o.matrix_dtype = dtype_from_name(a.weights_as, "--weights-as");
  return Model::load(a.model, o);
}

inline void apply_threads(const ModelArgs& a) { set_num_threads(a.threads); }

// --adapter DIR (PEFT LoRA, applied unmerged) and, when an exit or the vote is asked for, the
// exit heads of the ALT run that wrote DIR. `cmd` names the command in errors.
struct AdapterArgs {
  std::unique_ptr<LoraAdapters> adapter;  // null without --adapter
  std::unique_ptr<ExitHeads> heads;       // null unless `need_exits`
};
inline AdapterArgs load_adapter_args(const Model& m, const std::string& dir, bool need_exits,
                                     const char* cmd) {
  AdapterArgs r;
  if (!dir.empty()) r.adapter = std::make_unique<LoraAdapters>(LoraAdapters::load(dir, m.config()));
  if (need_exits) {
    if (dir.empty() || !ExitHeads::present(dir))
      fail("[{}] --exit and --vote need --adapter DIR of a tune --method alt run", cmd);
    r.heads = std::make_unique<ExitHeads>(ExitHeads::load(dir, m.config()));
  }
  return r;
}

inline void print_json(const nlohmann::json& j) { std::printf("%s\n", j.dump(2).c_str()); }

}  // namespace edgellm::cli
