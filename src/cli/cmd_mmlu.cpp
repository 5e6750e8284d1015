#include <fmt/format.h>

#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "eval/mmlu.h"
#include "eval/model_files.h"
#include "model/exit_heads.h"
#include "model/lora.h"
#include "util/error.h"

namespace edgellm::cli {

namespace {

nlohmann::json group_json(const MmluGroupResult& g) {
  return {{"name", g.name},       {"subjects", g.subjects}, {"questions", g.questions},
          {"correct", g.correct}, {"micro", g.micro},       {"macro", g.macro}};
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

void register_mmlu(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "mmlu", "MMLU accuracy, scored as lm-evaluation-harness's mmlu task (see docs/eval.md)");
  struct Args : ModelArgs {
    std::string data, subjects, adapter;
    MmluOptions o;
    bool no_reuse = false;
  };
  auto a = std::make_shared<Args>();
  add_model_args(cmd, *a);
  cmd->add_option("--data", a->data,
                  "MMLU directory with dev/<subject>_dev.csv and "
                  "test/<subject>_test.csv (either CSV layout)")
      ->required();
  cmd->add_option("--shots", a->o.shots, "few-shot examples from dev (default 5)")
      ->check(CLI::Range(0, 64));
  cmd->add_option("--subjects", a->subjects, "comma-separated subjects (default: all in --data)");
  cmd->add_option("--limit", a->o.limit, "only the first N test questions of each subject")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--ctx", a->o.ctx, "context length (default: the model's, at most 4096)")
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_flag("--bos", a->o.bos,
                "prepend BOS to every prompt (llama.cpp does; the harness does not)");
  cmd->add_flag("--no-prefix-reuse", a->no_reuse,
                "run every prompt from an empty KV cache (slower; same scores)");
  cmd->add_option("--adapter", a->adapter,
                  "PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors), "
                  "applied unmerged");
  cmd->add_option("--exit", a->o.exit,
                  "ALT adapter: score exit K (an index into its exits, 0 = shallowest)");
  cmd->add_flag("--vote", a->o.vote,
                "ALT adapter: argmax over (exit, letter) of the letter probabilities, one trunk "
                "forward for all exits");
  cmd->callback([a] {
    apply_threads(*a);
    a->o.reuse_prefix = !a->no_reuse;
    auto m = load_model(*a);
    auto tok = load_tokenizer_for(*m, a->tokenizer);
    const AdapterArgs ad = load_adapter_args(*m, a->adapter, a->o.exit >= 0 || a->o.vote, "mmlu");
    const std::unique_ptr<ExitHeads>& heads = ad.heads;
    a->o.adapter = ad.adapter.get();
    a->o.exits = ad.heads.get();
    std::vector<std::string> names =
        a->subjects.empty() ? mmlu_subjects(a->data) : split_commas(a->subjects);
    std::vector<MmluSubject> subjects;
    for (const std::string& n : names) subjects.push_back(load_mmlu_subject(a->data, n));
    a->o.progress = [](const std::string& s, int64_t done, int64_t total) {
      fmt::print(stderr, "[mmlu] {}/{} questions ({} done)\n", done, total, s);
    };
    const MmluResult r = evaluate_mmlu(*m, *tok, subjects, a->o);
    if (a->json) {
      nlohmann::json subj = nlohmann::json::array(), cats = nlohmann::json::array();
      for (const MmluSubjectResult& s : r.subjects)
        subj.push_back({{"name", s.name},
                        {"category", s.category},
                        {"questions", s.questions},
                        {"correct", s.correct},
                        {"acc", s.acc},
                        {"shortened", s.shortened},
                        {"truncated", s.truncated}});
      for (const MmluGroupResult& g : r.categories) cats.push_back(group_json(g));
      print_json({{"model", a->model},
                  {"data", a->data},
                  {"adapter", a->adapter},
                  {"shots", r.shots},
                  {"ctx", r.ctx},
                  {"bos", r.bos},
                  {"limit", a->o.limit},
                  {"questions", r.overall.questions},
                  {"correct", r.overall.correct},
                  {"micro", r.overall.micro},
                  {"macro", r.overall.macro},
                  {"categories", cats},
                  {"subjects", subj},
                  {"shortened", r.shortened},
                  {"truncated", r.truncated},
                  {"boundary_mismatches", r.boundary_mismatches},
                  {"predicted", r.predicted},
                  {"answers", r.answers},
                  {"tokens_computed", r.tokens_computed},
                  {"tokens_reused", r.tokens_reused},
                  {"seconds", r.seconds},
                  {"seconds_per_question", r.seconds_per_question},
                  {"exit", a->o.vote ? nlohmann::json("vote") : nlohmann::json(a->o.exit)},
                  {"exit_depths", heads ? heads->config().depths : std::vector<int>{}},
                  {"exit_correct", r.exit_correct},
                  {"exit_wins", r.exit_wins}});
    } else {
      for (const MmluSubjectResult& s : r.subjects)
        fmt::print("{:40s} {:16s} {:5d}/{:<5d} {:6.2f}%  shortened {}\n", s.name, s.category,
                   s.correct, s.questions, 100 * s.acc, s.shortened);
      for (const MmluGroupResult& g : r.categories)
        fmt::print("{:40s} micro {:6.2f}%  macro {:6.2f}%  ({} subjects, {} questions)\n", g.name,
                   100 * g.micro, 100 * g.macro, g.subjects, g.questions);
      fmt::print(
          "MMLU {}-shot: micro {:.2f}%  macro {:.2f}%  over {} questions in {} subjects; {} "
          "prompts shortened ({} cut from the left); {:.3f} s/question ({:.1f} s)\n",
          r.shots, 100 * r.overall.micro, 100 * r.overall.macro, r.overall.questions,
          r.overall.subjects, r.shortened, r.truncated, r.seconds_per_question, r.seconds);
      for (size_t e = 0; e < r.exit_correct.size(); ++e)
        fmt::print("exit {} (depth {}): {} correct on its own{}\n", e, heads->depth(int(e)),
                   r.exit_correct[e],
                   a->o.vote ? fmt::format(", won the vote {} times", r.exit_wins[e]) : "");
    }
  });
}

}  // namespace edgellm::cli
