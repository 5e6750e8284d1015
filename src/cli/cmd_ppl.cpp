#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "eval/exit_vote.h"
#include "eval/model_files.h"
#include "eval/perplexity.h"
#include "model/exit_heads.h"
#include "model/lora.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm::cli {

void register_ppl(CLI::App& app) {
  auto* cmd = app.add_subcommand("ppl", "perplexity of a text file");
  struct Args : ModelArgs {
    std::string text, protocol = "standard", adapter;
    int exit = -1;
    bool vote = false, as_trained = false;
    PplOptions o;
  };
  auto a = std::make_shared<Args>();
  add_model_args(cmd, *a);
  cmd->add_option("--text", a->text, "UTF-8 text file, evaluated as-is")->required();
  cmd->add_option("--ctx", a->o.ctx, "window length in tokens")->check(CLI::Range(2, 1 << 20));
  cmd->add_option("--protocol", a->protocol,
                  "standard | llamacpp | edgellm-paper (see docs/eval.md)");
  cmd->add_option("--max-tokens", a->o.max_tokens,
                  "evaluate only the first N tokens (BOS included)");
  cmd->add_option("--adapter", a->adapter,
                  "PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors), "
                  "applied unmerged");
  cmd->add_option("--exit", a->exit,
                  "ALT adapter: evaluate exit K (an index into its exits, 0 = shallowest; default "
                  "the deepest)");
  cmd->add_flag("--vote", a->vote,
                "ALT adapter: every exit's perplexity, the max-then-renormalise vote and the mean "
                "of the exits' distributions, from one trunk forward");
  cmd->add_flag("--as-trained", a->as_trained,
                "ALT adapter of a branch-mode run, with --exit K: evaluate exit K as it was "
                "trained (the frozen base below its window) instead of all adapters active");
  cmd->callback([a] {
    apply_threads(*a);
    a->o.protocol = ppl_protocol_from_name(a->protocol);
    auto m = load_model(*a);
    auto tok = load_tokenizer_for(*m, a->tokenizer);
    std::unique_ptr<LoraAdapters> adapter;
    if (!a->adapter.empty()) {
      adapter = std::make_unique<LoraAdapters>(LoraAdapters::load(a->adapter, m->config()));
      a->o.adapter = adapter.get();
    }
    const std::string text = read_file(a->text);
    const std::vector<int32_t> tokens = ppl_tokens(*tok, text, a->o.max_tokens);
    const bool alt = !a->adapter.empty() && ExitHeads::present(a->adapter);
    if (!alt && (a->exit >= 0 || a->vote))
      fail("[ppl] --exit and --vote need --adapter DIR of a tune --method alt run (with {})",
           "edgellm_exits.json");
    if (alt) {
      // All adapters active in one stream, whatever the run's --lora-mode (docs/alt.md).
      const ExitHeads heads = ExitHeads::load(a->adapter, m->config());
      if (a->exit >= heads.n_exits())
        fail("[ppl] --exit {}: the adapter has exits 0..{}", a->exit, heads.n_exits() - 1);
      if (a->o.protocol == PplProtocol::LlamaCpp)
        fail("[ppl] --protocol llamacpp is not supported with exits (standard, edgellm-paper)");
      const int64_t ctx = a->o.protocol == PplProtocol::EdgeLlmPaper ? 128 : a->o.ctx;
      const int sel = a->exit >= 0 ? a->exit : heads.n_exits() - 1;
      if (a->as_trained && (a->exit < 0 || a->vote))
        fail("[ppl] --as-trained evaluates one exit: give --exit K, without --vote");
      std::unique_ptr<LoraAdapters> branch;
      if (a->as_trained && heads.config().lora_mode == ExitLoraMode::Branch)
        branch = std::make_unique<LoraAdapters>(
            branch_adapter(*adapter, heads.depth(sel), heads.config().window));
      const PplExitsResult r = perplexity_exits(*m, heads, branch ? branch.get() : adapter.get(),
                                                tokens, ctx, /*votes=*/!a->as_trained);
      nlohmann::json exits = nlohmann::json::array();
      for (int i = 0; i < heads.n_exits(); ++i)
        exits.push_back({{"exit", i},
                         {"depth", r.depths[i]},
                         {"ppl", r.exit_ppl[i]},
                         {"mean_nll", r.exit_mean_nll[i]}});
      const double ppl = a->vote ? r.vote_max_renorm_ppl : r.exit_ppl[sel];
      if (a->json) {
        print_json({{"model", a->model},
                    {"text", a->text},
                    {"adapter", a->adapter},
                    {"protocol", ppl_protocol_name(a->o.protocol)},
                    {"ctx", r.ctx},
                    {"tokens", r.tokens},
                    {"windows", r.windows},
                    {"predictions", r.predictions},
                    {"ppl", ppl},
                    {"selected", a->vote ? "vote_max_renorm" : fmt::format("exit {}", sel)},
                    {"as_trained", branch != nullptr},
                    {"exits", exits},
                    {"vote_max_renorm",
                     {{"ppl", r.vote_max_renorm_ppl}, {"mean_nll", r.vote_max_renorm_nll}}},
                    {"vote_mean", {{"ppl", r.vote_mean_ppl}, {"mean_nll", r.vote_mean_nll}}},
                    {"seconds", r.seconds}});
        return;
      }
      for (int i = 0; i < heads.n_exits(); ++i)
        fmt::print("exit {} (depth {}): ppl {:.4f}{}\n", i, r.depths[i], r.exit_ppl[i],
                   !a->vote && i == sel ? "  <- selected" : "");
      fmt::print("vote max-then-renormalise: ppl {:.4f}{}\nvote mean of exits: ppl {:.4f}\n",
                 r.vote_max_renorm_ppl, a->vote ? "  <- selected" : "", r.vote_mean_ppl);
      fmt::print("{} predictions, {} windows of {}, {:.2f} s\n", r.predictions, r.windows, r.ctx,
                 r.seconds);
      return;
    }
    PplResult r = perplexity(*m, tokens, a->o);
    add_bits_per_byte(r, *tok, tokens);
    if (a->json) {
      print_json({{"model", a->model},
                  {"text", a->text},
                  {"adapter", a->adapter},
                  {"protocol", r.protocol},
                  {"ctx", r.ctx},
                  {"tokens", r.tokens},
                  {"windows", r.windows},
                  {"predictions", r.predictions},
                  {"mean_nll", r.mean_nll},
                  {"ppl", r.ppl},
                  {"bytes", r.bytes},
                  {"bpb", r.bpb},
                  {"seconds", r.seconds}});
    } else {
      fmt::print(
          "{}: ppl {:.4f} (mean NLL {:.4f} nats, {:.4f} bits/byte) over {} predictions, {} "
          "tokens, {} windows of {} [{}], {:.2f} s\n",
          a->text, r.ppl, r.mean_nll, r.bpb, r.predictions, r.tokens, r.windows, r.ctx, r.protocol,
          r.seconds);
    }
  });
}

}  // namespace edgellm::cli
