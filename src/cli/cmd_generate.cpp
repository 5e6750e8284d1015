#include <fmt/format.h>

#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "eval/generate.h"
#include "eval/model_files.h"
#include "model/exit_heads.h"
#include "model/lora.h"
#include "util/error.h"

namespace edgellm::cli {

void register_generate(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "generate text from a prompt");
  struct Args : ModelArgs {
    std::string prompt, adapter;
    int exit = -1;
    bool vote = false;
    int n = 128;
    SamplerConfig s;
  };
  auto a = std::make_shared<Args>();
  add_model_args(cmd, *a);
  cmd->add_option("--prompt,-p", a->prompt, "prompt text (default: empty, i.e. start from BOS)");
  cmd->add_option("-n,--n-tokens", a->n, "tokens to generate")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--temp", a->s.temperature, "temperature; 0 = greedy")
      ->check(CLI::Range(0.f, 100.f));
  cmd->add_option("--top-k", a->s.top_k, "keep the k most likely tokens (0 = off)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-p", a->s.top_p, "nucleus sampling mass (1 = off)")
      ->check(CLI::Range(0.f, 1.f));
  cmd->add_option("--seed", a->s.seed, "sampling seed");
  cmd->add_option("--adapter", a->adapter, "PEFT LoRA adapter directory, applied unmerged");
  cmd->add_option("--exit", a->exit,
                  "ALT adapter: generate from exit K (an index into its exits, 0 = shallowest)");
  cmd->add_flag("--vote", a->vote,
                "ALT adapter: per step the token with the highest probability over all exits "
                "(with --temp > 0: sampled from the winning exit)");
  cmd->callback([a] {
    apply_threads(*a);
    auto m = load_model(*a);
    auto tok = load_tokenizer_for(*m, a->tokenizer);
    const AdapterArgs ad = load_adapter_args(*m, a->adapter, a->exit >= 0 || a->vote, "generate");
    const std::unique_ptr<LoraAdapters>& adapter = ad.adapter;
    GenerateExits ge;
    if (ad.heads) ge = {ad.heads.get(), a->exit, a->vote};
    auto stream = [](const std::string& s) {
      std::fputs(s.c_str(), stdout);
      std::fflush(stdout);
    };
    if (!a->json) stream(a->prompt);
    GenerateResult r =
        generate(*m, *tok, a->prompt, a->n, a->s,
                 a->json ? std::function<void(const std::string&)>() : stream, adapter.get(), ge);
    const double tps = r.ids.size() > 1 ? (r.ids.size() - 1) / r.decode_seconds : 0;
    if (a->json) {
      print_json({{"prompt", a->prompt},
                  {"prompt_tokens", r.prompt_ids.size()},
                  {"text", r.text},
                  {"ids", r.ids},
                  {"generated_tokens", r.ids.size()},
                  {"stopped_at_eos", r.stopped_at_eos},
                  {"exits", r.exits},
                  {"prefill_seconds", r.prefill_seconds},
                  {"decode_seconds", r.decode_seconds},
                  {"decode_tokens_per_second", tps}});
    } else {
      std::fprintf(stderr, "\n[%zu prompt tokens, %zu generated, %.1f tok/s decode]\n",
                   r.prompt_ids.size(), r.ids.size(), tps);
    }
  });
}

}  // namespace edgellm::cli
