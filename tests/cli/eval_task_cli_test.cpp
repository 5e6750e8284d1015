// `edgellm eval-task` on a real ALT run: every figure it prints equals eval/task_eval's
// evaluate_task called in-process on the same files (the CLI only reads and prints), per exit and
// by the vote; exact match counts responses that equal the greedy output; misuse fails clearly.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "eval/model_files.h"
#include "eval/task_eval.h"
#include "kernels/threads.h"
#include "model/exit_heads.h"
#include "model/lora.h"
#include "test_util.h"
#include "train/data.h"

namespace edgellm {
namespace {

struct Out {
  int code;
  std::string out;
};

// stdout only (progress goes to stderr) unless `merge`.
Out cli(const std::string& args, bool merge = false) {
  const testing::CliOutput r = testing::run_cli(args, merge);
  return {r.code, r.out};
}

void write_records(const std::string& path, const std::vector<AlpacaRecord>& rs) {
  nlohmann::json j = nlohmann::json::array();
  for (const AlpacaRecord& r : rs)
    j.push_back({{"instruction", r.instruction}, {"input", r.input}, {"output", r.output}});
  std::ofstream(path) << j.dump();
}

TEST(EvalTaskCli, EqualsEvaluateTaskPerExitAndByTheVote) {
  const char* kBin = "models/stories260K/stories260K.bin";
  EDGELLM_REQUIRE_DATA(kBin);
  const std::string dir = testing::temp_dir("cli_eval_task"), model = testing::data_path(kBin);
  const std::vector<AlpacaRecord> train = {
      {"Tell a short story.", "", "Once upon a time there was a cat."},
      {"Finish the sentence.", "The dog ran", "to the park and played with a ball."},
      {"Name a color.", "", "Red."},
      {"What did Lily like?", "", "Lily liked to play in the sun."}};
  std::vector<AlpacaRecord> held = {{"Tell a story about a bird.", "", "A bird flew to a tree."},
                                    {"Finish the sentence.", "Tom was", "happy and he smiled."},
                                    {"Name an animal.", "", "A cat."}};
  write_records(dir + "/train.json", train);
  write_records(dir + "/held.json", held);
  const Out t = cli("tune --model " + model + " --data " + dir +
                        "/train.json --method alt --steps 4 --seq 256 --val-frac 0 --threads 1 "
                        "--out " +
                        dir + "/alt",
                    true);
  ASSERT_EQ(t.code, 0) << t.out;

  // The same evaluation in-process.
  set_num_threads(1);
  const auto m = Model::load(model);
  const auto tok = load_tokenizer_for(*m, "");
  const LoraAdapters ad = LoraAdapters::load(dir + "/alt", m->config());
  const ExitHeads heads = ExitHeads::load(dir + "/alt", m->config());
  ASSERT_EQ(heads.n_exits(), 4);
  auto prompts = [&](const std::vector<AlpacaRecord>& rs) {
    std::vector<PromptResponse> d;
    for (const AlpacaRecord& r : rs)
      d.push_back({alpaca_prompt(r.instruction, r.input), r.output, ""});
    return d;
  };
  TaskEvalOptions o;
  o.max_new_tokens = 8;
  o.adapter = &ad;
  o.exits = &heads;
  const std::string args = "eval-task --model " + model + " --adapter " + dir +
                           "/alt --max-new-tokens 8 --threads 1 --json --data ";

  // By the vote: its NLL (max-then-renormalise), exact match, and every exit's and the mean
  // vote's NLL from the same pass.
  o.vote = true;
  const TaskEvalResult v = evaluate_task(*m, *tok, prompts(held), o);
  Out r = cli(args + dir + "/held.json --vote");
  ASSERT_EQ(r.code, 0) << r.out;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["decoded_by"], "vote");
  EXPECT_EQ(j["n"].get<int>(), 3);
  EXPECT_EQ(j["response_tokens"].get<int64_t>(), v.overall.response_tokens);
  EXPECT_NEAR(j["response_nll"].get<double>(), v.overall.response_nll, 1e-9);
  EXPECT_EQ(j["exit_depths"].get<std::vector<int>>(), heads.config().depths);
  // The per-exit figures are each exit's own evaluation.
  ASSERT_EQ(j["exit_response_nll"].size(), 4u);
  o.vote = false;
  for (int e = 0; e < 4; ++e) {
    o.exit = e;
    const TaskEvalResult x = evaluate_task(*m, *tok, prompts(held), o);
    EXPECT_NEAR(j["exit_response_nll"][e].get<double>(), x.overall.response_nll, 1e-9) << e;
  }
  EXPECT_NEAR(j["vote_max_renorm_nll"].get<double>(), v.overall.response_nll, 1e-9);
  EXPECT_GT(j["vote_mean_nll"].get<double>(), 0);

  // One exit: decoded by it, the same NLL.
  o.exit = 1;
  const TaskEvalResult x1 = evaluate_task(*m, *tok, prompts(held), o);
  r = cli(args + dir + "/held.json --exit 1");
  ASSERT_EQ(r.code, 0) << r.out;
  j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["decoded_by"].get<int>(), 1);
  EXPECT_NEAR(j["response_nll"].get<double>(), x1.overall.response_nll, 1e-9);
  EXPECT_EQ(j["correct"].get<int>(), x1.overall.correct);

  // Exact match: responses set to what exit 1 decodes greedily all count (two of the three;
  // the third keeps a response it does not produce).
  ASSERT_EQ(x1.samples.size(), 3u);
  for (size_t i = 0; i < 2; ++i) held[i].output = x1.samples[i].got;
  held[2].output = x1.samples[2].got + " and more";
  write_records(dir + "/held2.json", held);
  r = cli(args + dir + "/held2.json --exit 1");
  ASSERT_EQ(r.code, 0) << r.out;
  j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["correct"].get<int>(), 2);
  EXPECT_NEAR(j["exact_match"].get<double>(), 2.0 / 3.0, 1e-12);

  // Without --exit / --vote: the model's final head with every adapter, no exit figures.
  o.exits = nullptr;
  o.exit = -1;
  const TaskEvalResult fin = evaluate_task(*m, *tok, prompts(held), o);
  r = cli(args + dir + "/held2.json");
  ASSERT_EQ(r.code, 0) << r.out;
  j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["decoded_by"], "final");
  EXPECT_NEAR(j["response_nll"].get<double>(), fin.overall.response_nll, 1e-9);
  EXPECT_FALSE(j.contains("exit_response_nll"));

  // Misuse fails, naming what is wrong.
  r = cli(args + dir + "/held.json --exit 9", true);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("exit 9"), std::string::npos) << r.out;
  r = cli("eval-task --model " + model + " --data " + dir + "/held.json --vote", true);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("--adapter"), std::string::npos) << r.out;
  std::ofstream(dir + "/bad.json") << R"([{"instruction": "x"}])";
  r = cli(args + dir + "/bad.json", true);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("bad.json: record 0: missing field 'output'"), std::string::npos) << r.out;
  set_num_threads(0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace edgellm
