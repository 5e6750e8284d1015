// End-to-end training on the real stories260K model: LoRA on Shakespeare lowers held-out
// perplexity; the adapter reloads and gives the same perplexity unmerged and merged; a resumed
// run reproduces the uninterrupted run's losses exactly; bad inputs fail with clear errors.
#include "train/trainer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "eval/model_files.h"
#include "eval/perplexity.h"
#include "kernels/threads.h"
#include "test_util.h"
#include "train/data.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {
namespace {

std::string write_temp(const std::string& dir, const std::string& name, const std::string& s) {
  const std::string p = dir + "/" + name;
  std::ofstream(p) << s;
  return p;
}

// stories260K is far too small for threads to pay: on a loaded 2-core runner OpenMP barriers
// dominate (10x slower), so these tests run single-threaded (the resume check needs a fixed
// thread count anyway).
class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override { set_num_threads(1); }
  void TearDown() override { set_num_threads(0); }
};

using testing::error_of;

TEST_F(TrainerTest, LoraOnShakespeareLowersHeldOutPerplexityAndReloads) {
  EDGELLM_REQUIRE_DATA(testing::kStories260KBin);
  EDGELLM_REQUIRE_DATA(testing::kShakespeare);
  auto m = Model::load(testing::stories260k_path());
  auto tok = load_tokenizer_for(*m, "");
  const std::string text = read_file(testing::data_path(testing::kShakespeare));
  const std::string dir = testing::temp_dir("lora_shakespeare");
  // Train on the first 40k characters; hold out 12k characters from far later in the play.
  const std::string train = write_temp(dir, "train.txt", text.substr(0, 40000));
  const std::string held = text.substr(600000, 12000);
  TuneOptions o;
  o.steps = 300;
  o.seq = 64;
  o.lr = 3e-3f;
  o.lora.rank = 8;
  o.lora.alpha = 16;
  o.out = dir + "/out";
  o.base_model = testing::kStories260KBin;
  const Dataset data = load_text_dataset(train, *tok, o.seq, 0.05);
  Trainer tr(*m, data, o);
  tr.run();
  ASSERT_EQ(tr.step(), 300);

  PplOptions po;
  po.ctx = 256;
  const auto ids = ppl_tokens(*tok, held, 0);
  const double before = perplexity(*m, ids, po).ppl;
  po.adapter = tr.lora();
  const double after = perplexity(*m, ids, po).ppl;
  std::printf("[shakespeare] held-out ppl: base %.3f -> LoRA %.3f\n", before, after);
  EXPECT_LT(after, 0.75 * before);

  // Saved adapter: reload unmerged, then merged into the weights: same perplexity.
  ASSERT_TRUE(std::filesystem::exists(o.out + "/adapter_config.json"));
  ASSERT_TRUE(std::filesystem::exists(o.out + "/adapter_model.safetensors"));
  const LoraAdapters re = LoraAdapters::load(o.out, m->config());
  po.adapter = &re;
  const double reloaded = perplexity(*m, ids, po).ppl;
  EXPECT_NEAR(reloaded, after, 1e-6 * after);
  merge_adapter(*m, re, dir + "/merged");
  auto merged = Model::load(dir + "/merged");
  po.adapter = nullptr;
  const double merged_ppl = perplexity(*merged, ids, po).ppl;
  std::printf("[shakespeare] reloaded %.4f, merged %.4f\n", reloaded, merged_ppl);
  EXPECT_NEAR(merged_ppl, after, 1e-3 * after);
  // An adapter for a different model shape is refused by name.
  ModelConfig other = ModelConfig::preset("134M");
  EXPECT_NE(error_of([&] { LoraAdapters::load(o.out, other); }).find("shape"), std::string::npos);
  std::filesystem::remove_all(dir);
}

std::vector<double> losses(const Model& m, const Dataset& d, TuneOptions o, int64_t stop_after) {
  std::vector<double> out;
  Trainer tr(m, d, o);
  tr.run([&](const StepLog& s) { out.push_back(s.loss); }, stop_after);
  return out;
}

TEST_F(TrainerTest, ResumeReproducesTheLossSequenceExactly) {
  EDGELLM_REQUIRE_DATA(testing::kStories260KBin);
  EDGELLM_REQUIRE_DATA(testing::kShakespeare);
  auto m = Model::load(testing::stories260k_path());
  auto tok = load_tokenizer_for(*m, "");
  const std::string dir = testing::temp_dir("resume");
  const std::string train = write_temp(
      dir, "train.txt", read_file(testing::data_path(testing::kShakespeare)).substr(0, 8000));
  TuneOptions o;
  o.steps = 12;
  o.seq = 32;
  o.batch = 2;
  o.grad_accum = 2;
  o.lr = 1e-3f;
  o.schedule = LrSchedule::Cosine;
  o.warmup = 3;
  o.lora.dropout = 0.1f;  // dropout masks must be reproduced too
  o.adamw.weight_decay = 0.01f;
  const Dataset data = load_text_dataset(train, *tok, o.seq, 0.1);
  o.out = dir + "/a";
  const std::vector<double> full = losses(*m, data, o, -1);
  o.out = dir + "/b";
  std::vector<double> resumed = losses(*m, data, o, 5);  // "interrupted" after 5 steps
  o.resume = true;
  for (double l : losses(*m, data, o, -1)) resumed.push_back(l);
  ASSERT_EQ(full.size(), 12u);
  ASSERT_EQ(resumed.size(), 12u);
  for (size_t i = 0; i < full.size(); ++i) EXPECT_EQ(full[i], resumed[i]) << "step " << i + 1;
  // Both runs end with byte-identical adapters.
  EXPECT_EQ(read_file(dir + "/a/adapter_model.safetensors"),
            read_file(dir + "/b/adapter_model.safetensors"));
  std::filesystem::remove_all(dir);
}

TEST_F(TrainerTest, FullFineTuningLowersTrainingLoss) {
  EDGELLM_REQUIRE_DATA(testing::kStories260KBin);
  auto m = Model::load(testing::stories260k_path());
  auto tok = load_tokenizer_for(*m, "");
  const std::string dir = testing::temp_dir("full");
  const std::string train = write_temp(
      dir, "t.txt", "To be, or not to be, that is the question: whether 'tis nobler in the mind.");
  TuneOptions o;
  o.method = TuneMethod::Full;
  o.steps = 30;
  o.seq = 16;
  o.lr = 3e-3f;
  const Dataset data = load_text_dataset(train, *tok, o.seq, 0);
  const std::vector<double> l = losses(*m, data, o, -1);
  EXPECT_LT(l.back(), 0.5 * l.front());
  std::filesystem::remove_all(dir);
}

TEST_F(TrainerTest, AlpacaPromptTokensAreMaskedOut) {
  EDGELLM_REQUIRE_DATA(testing::kStories260KBin);
  auto m = Model::load(testing::stories260k_path());
  auto tok = load_tokenizer_for(*m, "");
  const std::string dir = testing::temp_dir("alpaca");
  const std::string p =
      write_temp(dir, "d.jsonl",
                 "{\"instruction\": \"Say hi\", \"input\": \"\", \"output\": \"Hi there\"}\n"
                 "{\"instruction\": \"Add\", \"input\": \"1 and 2\", \"output\": \"3\"}\n");
  const Dataset d = load_alpaca_dataset(p, *tok, 256, 0, 1);
  ASSERT_EQ(d.train.size(), 2u);
  for (const Example& e : d.train) {
    // Loss tokens are exactly encode(prompt + output) beyond the prompt, plus EOS.
    int64_t first = -1, n = 0;
    for (size_t t = 0; t < e.targets.size(); ++t)
      if (e.targets[t] >= 0) {
        if (first < 0) first = static_cast<int64_t>(t);
        ++n;
      }
    ASSERT_GT(first, 10);
    EXPECT_EQ(first + n, static_cast<int64_t>(e.targets.size()));  // contiguous to the end
    EXPECT_EQ(e.targets.back(), tok->eos_id());
  }
  EXPECT_NE(alpaca_prompt("x", "").find("### Response:\n"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_F(TrainerTest, BadInputsFailClearly) {
  EDGELLM_REQUIRE_DATA(testing::kStories260KBin);
  auto m = Model::load(testing::stories260k_path());
  auto tok = load_tokenizer_for(*m, "");
  const std::string dir = testing::temp_dir("bad");
  // empty dataset
  const std::string empty = write_temp(dir, "empty.txt", "");
  EXPECT_NE(error_of([&] { load_dataset(empty, *tok, 64, 0, 0); }).find("empty.txt"),
            std::string::npos);
  const std::string empty_json = write_temp(dir, "empty.json", "[]");
  EXPECT_NE(error_of([&] { load_dataset(empty_json, *tok, 64, 0, 0); }).find("no usable"),
            std::string::npos);
  // malformed JSON record (line 2 of a JSONL file), and a record missing a field
  const std::string bad =
      write_temp(dir, "bad.jsonl", "{\"instruction\": \"a\", \"output\": \"b\"}\n{\"instr\n");
  EXPECT_NE(error_of([&] { load_dataset(bad, *tok, 64, 0, 0); }).find("line 2"), std::string::npos);
  const std::string missing = write_temp(dir, "m.json", "[{\"instruction\": \"a\"}]");
  EXPECT_NE(error_of([&] { load_dataset(missing, *tok, 64, 0, 0); }).find("'output'"),
            std::string::npos);
  // sequences longer than the model's context (stories260K: 512)
  const std::string txt = write_temp(dir, "t.txt", std::string(5000, 'a'));
  const Dataset d = load_dataset(txt, *tok, 600, 0, 0);
  TuneOptions o;
  o.seq = 600;
  EXPECT_NE(error_of([&] { Trainer tr(*m, d, o); }).find("context"), std::string::npos);
  // a budget that cannot fit: the error prints the plan
  const Dataset d2 = load_dataset(txt, *tok, 64, 0, 0);
  o.seq = 64;
  o.mem_budget = 100000;
  const std::string e = error_of([&] { Trainer tr(*m, d2, o); });
  EXPECT_NE(e.find("--mem-budget"), std::string::npos);
  EXPECT_NE(e.find("activations"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// A NaN learning rate poisons the parameters at step 1; step 2's loss is NaN and the run must
// stop there with a message instead of finishing "successfully".
TEST_F(TrainerTest, NonFiniteLossStopsTraining) {
  EDGELLM_REQUIRE_DATA(testing::kStories260KBin);
  auto m = Model::load(testing::stories260k_path());
  auto tok = load_tokenizer_for(*m, "");
  const std::string dir = testing::temp_dir("nan_lr");
  const std::string txt = write_temp(dir, "t.txt", std::string(3000, 'a'));
  const Dataset d = load_dataset(txt, *tok, 32, 0, 0);
  TuneOptions o;
  o.seq = 32;
  o.steps = 5;
  o.lr = NAN;
  Trainer tr(*m, d, o);
  const std::string e = error_of([&] { tr.run(); });
  EXPECT_NE(e.find("step 2: loss is"), std::string::npos) << e;
  EXPECT_NE(e.find("nan"), std::string::npos) << e;  // printed "nan" or "-nan"
  EXPECT_EQ(tr.step(), 1);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace edgellm
