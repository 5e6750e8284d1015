// Task scoring: exact match agrees with generate()'s greedy text, response NLL with an
// independent token-by-token computation, groups add up to the whole.
#include "eval/task_eval.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "eval/generate.h"
#include "eval/model_files.h"
#include "io/model_writer.h"
#include "model/forward.h"
#include "test_util.h"

namespace edgellm {
namespace {

const char* kTok = "models/stories260K/tok512.model";

TEST(TaskEval, ExactMatchAndNllAgreeWithIndependentComputations) {
  EDGELLM_REQUIRE_DATA(kTok);
  const std::string dir = testing::temp_dir("task_eval");
  write_hf_dir(ModelConfig::parse_shape("dim=32,layers=2,heads=4,kv_heads=2,ff=64,vocab=512,"
                                        "ctx=128,tied=1"),
               random_source(5, 0.3f), dir, DType::F32);
  const auto m = Model::load(dir);
  const auto tok = load_tokenizer_for(*m, testing::data_path(kTok));
  const std::vector<std::string> prompts = {"Repeat the words.\ncat dog\n", "What is 2 + 3?\n",
                                            "Once upon a time"};
  std::vector<PromptResponse> data;
  for (size_t i = 0; i < prompts.size(); ++i) {
    // What greedy decoding produces is by construction correct; a different answer is not.
    const GenerateResult g = generate(*m, *tok, prompts[i], 6, SamplerConfig{});
    data.push_back({prompts[i], i == 1 ? g.text + " nope" : g.text, i == 2 ? "story" : "task"});
  }
  TaskEvalOptions o;
  o.max_new_tokens = 6;
  const TaskEvalResult r = evaluate_task(*m, *tok, data, o);
  EXPECT_EQ(r.overall.n, 3);
  EXPECT_EQ(r.overall.correct, 2);
  EXPECT_NEAR(r.overall.exact_match, 2.0 / 3.0, 1e-12);
  ASSERT_EQ(r.groups.size(), 2u);
  EXPECT_EQ(r.groups[0].name, "task");
  EXPECT_EQ(r.groups[0].n + r.groups[1].n, 3);
  EXPECT_EQ(r.samples.size(), 3u);
  EXPECT_FALSE(r.samples[1].correct);

  // NLL token by token from the KV cache, in double.
  double sum = 0;
  int64_t count = 0;
  for (const PromptResponse& ex : data) {
    std::vector<int32_t> ids{tok->bos_id()};
    for (int32_t id : tok->encode(ex.prompt + ex.response)) ids.push_back(id);
    ids.push_back(tok->eos_id());
    const size_t n_prompt = 1 + tok->encode(ex.prompt).size();
    InferenceState st(*m);
    for (size_t t = 0; t + 1 < ids.size(); ++t) {
      const float* lg = st.forward_last_logits(&ids[t], 1);
      if (t + 1 < n_prompt) continue;
      double mx = -1e30, z = 0;
      for (int v = 0; v < m->config().vocab_size; ++v) mx = std::max(mx, double(lg[v]));
      for (int v = 0; v < m->config().vocab_size; ++v) z += std::exp(double(lg[v]) - mx);
      sum += std::log(z) + mx - double(lg[ids[t + 1]]);
      ++count;
    }
  }
  EXPECT_EQ(r.overall.response_tokens, count);
  EXPECT_NEAR(r.overall.response_nll, sum / double(count), 1e-4);
  EXPECT_EQ(r.skipped_too_long, 0);
  // limit scores a prefix.
  o.limit = 1;
  EXPECT_EQ(evaluate_task(*m, *tok, data, o).overall.n, 1);
  // An example that does not fit the context (128) is left out and counted; the rest score as
  // before.
  o.limit = 0;
  std::vector<PromptResponse> longer = data;
  std::string words;
  for (int i = 0; i < 200; ++i) words += " cat";
  longer.insert(longer.begin() + 1, PromptResponse{"Repeat:" + words + "\n", words, "task"});
  const TaskEvalResult rl = evaluate_task(*m, *tok, longer, o);
  EXPECT_EQ(rl.skipped_too_long, 1);
  EXPECT_EQ(rl.overall.n, 3);
  EXPECT_EQ(rl.overall.correct, r.overall.correct);
  EXPECT_EQ(rl.overall.response_tokens, r.overall.response_tokens);
  EXPECT_DOUBLE_EQ(rl.overall.response_nll, r.overall.response_nll);
  std::filesystem::remove_all(dir);
}

TEST(TaskEval, TrimIgnoresSurroundingWhitespaceOnly) {
  EXPECT_EQ(trim_ws("  a b \n"), "a b");
  EXPECT_EQ(trim_ws(" \t\n"), "");
}

}  // namespace
}  // namespace edgellm
