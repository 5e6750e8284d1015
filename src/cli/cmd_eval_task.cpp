#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "eval/model_files.h"
#include "eval/task_eval.h"
#include "model/exit_heads.h"
#include "model/lora.h"
#include "train/data.h"
#include "util/error.h"

namespace edgellm::cli {

void register_eval_task(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "eval-task",
      "held-out instruction data: response NLL (prompt masked, as tune counts it) and exact "
      "match of greedy responses, per exit or by the vote for an ALT adapter (docs/alt.md)");
  struct Args : ModelArgs {
    std::string data, adapter;
    TaskEvalOptions o;
  };
  auto a = std::make_shared<Args>();
  add_model_args(cmd, *a);
  cmd->add_option("--data", a->data,
                  "Alpaca .json array or .jsonl (instruction, optional input, output)")
      ->required();
  cmd->add_option("--adapter", a->adapter,
                  "PEFT LoRA adapter directory (tune --out), applied unmerged");
  cmd->add_option("--exit", a->o.exit,
                  "ALT adapter: decode and score exit K (an index, 0 = shallowest); every exit's "
                  "NLL and both votes' are reported too");
  cmd->add_flag("--vote", a->o.vote,
                "ALT adapter: decode by the per-step vote, NLL under max-then-renormalise; every "
                "exit's NLL and the mean vote's are reported too");
  cmd->add_option("--limit", a->o.limit, "only the first N records")->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-new-tokens", a->o.max_new_tokens,
                  "greedy tokens per response (default 24)")
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--samples", a->o.keep_samples, "first N (expected, got) pairs in the output")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([a] {
    apply_threads(*a);
    if (a->o.vote && a->o.exit >= 0) fail("[eval-task] --exit {} and --vote: pick one", a->o.exit);
    auto m = load_model(*a);
    auto tok = load_tokenizer_for(*m, a->tokenizer);
    const AdapterArgs ad =
        load_adapter_args(*m, a->adapter, a->o.exit >= 0 || a->o.vote, "eval-task");
    a->o.adapter = ad.adapter.get();
    a->o.exits = ad.heads.get();
    a->o.score_all_exits = ad.heads != nullptr;
    const std::unique_ptr<ExitHeads>& heads = ad.heads;
    std::vector<PromptResponse> data;
    for (const AlpacaRecord& r : read_alpaca_records(a->data))
      data.push_back({alpaca_prompt(r.instruction, r.input), r.output, ""});
    if (data.empty()) fail("[eval-task] {}: no records", a->data);
    a->o.progress = [](int64_t done, int64_t total) {
      if (done % 25 == 0 || done == total)
        fmt::print(stderr, "[eval-task] {}/{} records\n", done, total);
    };
    const TaskEvalResult r = evaluate_task(*m, *tok, data, a->o);
    const TaskGroupResult& g = r.overall;
    const std::vector<int> depths = heads ? heads->config().depths : std::vector<int>{};
    if (a->json) {
      nlohmann::json samples = nlohmann::json::array();
      for (const TaskSample& s : r.samples)
        samples.push_back({{"expected", s.expected}, {"got", s.got}, {"correct", s.correct}});
      nlohmann::json j = {
          {"model", a->model},
          {"data", a->data},
          {"adapter", a->adapter},
          {"decoded_by", a->o.vote ? nlohmann::json("vote")
                                   : (heads ? nlohmann::json(a->o.exit) : nlohmann::json("final"))},
          {"n", g.n},
          {"correct", g.correct},
          {"exact_match", g.exact_match},
          {"response_nll", g.response_nll},
          {"response_tokens", g.response_tokens},
          {"max_new_tokens", a->o.max_new_tokens},
          {"exit_depths", depths},
          {"samples", samples},
          {"seconds", r.seconds}};
      if (heads) {
        j["exit_response_nll"] = g.exit_response_nll;
        j["vote_max_renorm_nll"] = g.vote_max_renorm_nll;
        j["vote_mean_nll"] = g.vote_mean_nll;
      }
      print_json(j);
      return;
    }
    fmt::print(
        "{} records, {} response tokens: response NLL {:.4f} nats/token, exact match {}/{} "
        "({:.1f}%), decoded by {} ({:.1f} s)\n",
        g.n, g.response_tokens, g.response_nll, g.correct, g.n, 100 * g.exact_match,
        a->o.vote ? std::string("the vote")
                  : (heads ? fmt::format("exit {} (depth {})", a->o.exit, heads->depth(a->o.exit))
                           : std::string("the final head")),
        r.seconds);
    for (size_t e = 0; e < g.exit_response_nll.size(); ++e)
      fmt::print("exit {} (depth {}): response NLL {:.4f}\n", e, depths[e], g.exit_response_nll[e]);
    if (heads)
      fmt::print("vote max-then-renormalise: {:.4f}   vote mean: {:.4f}\n", g.vote_max_renorm_nll,
                 g.vote_mean_nll);
  });
}

}  // namespace edgellm::cli
