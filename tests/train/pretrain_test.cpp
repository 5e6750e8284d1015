// Pretraining from scratch: the initial weights have the stated distribution; shapes parse from
// flags; the token corpus is [BOS] + encode(file) per file and windows start with BOS; a 2-layer
// model drives its training loss far below the unigram entropy of its text (computed here
// independently); an interrupted and resumed run equals an uninterrupted one exactly.
#include "train/pretrain.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/model_writer.h"
#include "kernels/threads.h"
#include "test_util.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {
namespace {

const char* kTok = "models/stories260K/tok512.model";
const char* kTiny = "dim=64,layers=2,heads=4,kv_heads=2,ff=172,vocab=512,ctx=128,tied=1";

std::string write_temp(const std::string& dir, const std::string& name, const std::string& s) {
  const std::string p = dir + "/" + name;
  std::ofstream(p) << s;
  return p;
}

using testing::error_of;

std::vector<double> metric_losses(const std::string& path) {
  std::vector<double> out;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line).at("loss").get<double>());
  return out;
}

class PretrainTest : public ::testing::Test {
 protected:
  void SetUp() override { set_num_threads(1); }
  void TearDown() override { set_num_threads(0); }
};

TEST(PretrainInit, WeightsFollowTheStatedDistribution) {
  const ModelConfig c = ModelConfig::parse_shape(
      "dim=128,layers=8,heads=4,kv_heads=2,ff=256,vocab=512,ctx=64,tied=0");
  const ModelSource src = pretrain_init_source(11, c.n_layers);
  const double residual = 0.02 / std::sqrt(2.0 * c.n_layers);
  for (const TensorSpec& s : model_tensor_specs(c)) {
    const int64_t rows = s.shape.size() == 2 ? s.shape[0] : 1, cols = s.shape.back();
    std::vector<float> row(cols);
    double sum = 0, sq = 0;
    const TensorSource t = src(s);
    for (int64_t r = 0; r < rows; ++r) {
      t.gen(r, row.data());
      for (float v : row) {
        sum += v;
        sq += double(v) * v;
      }
    }
    const double n = double(rows) * cols, mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
    if (s.role == TensorRole::Norm) {
      EXPECT_EQ(mean, 1.0) << s.name;
      EXPECT_EQ(sd, 0.0) << s.name;
      continue;
    }
    const bool out_proj =
        s.name.find("o_proj") != std::string::npos || s.name.find("down_proj") != std::string::npos;
    const double want = out_proj ? residual : 0.02;
    // n >= 16k draws: the sample sd is within 3% of the truth with overwhelming probability,
    // and 0.02 vs 0.02/4 are far apart.
    EXPECT_NEAR(sd, want, 0.03 * want) << s.name;
    EXPECT_NEAR(mean, 0.0, 5 * want / std::sqrt(n)) << s.name;
  }
}

TEST(ShapeSpec, ParsesRoundTripsAndRejectsBadValues) {
  const ModelConfig c = ModelConfig::parse_shape(kTiny);
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.n_layers, 2);
  EXPECT_EQ(c.n_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_TRUE(c.tied_embeddings);
  const ModelConfig d = ModelConfig::parse_shape(c.shape_spec());
  EXPECT_EQ(d.shape_spec(), c.shape_spec());
  EXPECT_EQ(ModelConfig::parse_shape("stories260K").dim, 64);
  EXPECT_EQ(ModelConfig::parse_shape("base=134M,layers=4").n_layers, 4);
  EXPECT_NE(
      error_of([] { ModelConfig::parse_shape("dim=64,layers=2"); }).find("missing key 'heads'"),
      std::string::npos);
  EXPECT_NE(error_of([] {
              ModelConfig::parse_shape("base=134M,layers=4294967298");
            }).find("layers=4294967298 outside"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              ModelConfig::parse_shape("base=134M,dim=76.5");
            }).find("dim=76.5 is not an integer"),
            std::string::npos);
  EXPECT_NE(
      error_of([] { ModelConfig::parse_shape("base=134M,depth=3"); }).find("unknown key 'depth'"),
      std::string::npos);
  EXPECT_NE(
      error_of([] { ModelConfig::parse_shape("base=134M,heads=5"); }).find("multiple of heads"),
      std::string::npos);
}

TEST_F(PretrainTest, TokenCorpusIsBosPlusEachFileAndWindowsStartWithBos) {
  EDGELLM_REQUIRE_DATA(kTok);
  const std::string dir = testing::temp_dir("corpus");
  const auto tok = load_tokenizer(testing::data_path(kTok));
  const std::string a = "Once upon a time there was a cat.\n\nIt sat on a mat.",
                    b = "The end of the story, 42 times.";
  const std::vector<std::string> files = {write_temp(dir, "a.txt", a), write_temp(dir, "b.txt", b)};
  bool reused = true;
  auto c = TokenCorpus::build(files, *tok, testing::data_path(kTok), dir + "/cache", &reused);
  EXPECT_FALSE(reused);
  std::vector<int32_t> want{tok->bos_id()};
  for (int32_t id : tok->encode(a)) want.push_back(id);
  const int64_t second = static_cast<int64_t>(want.size());
  want.push_back(tok->bos_id());
  for (int32_t id : tok->encode(b)) want.push_back(id);
  ASSERT_EQ(c->size(), static_cast<int64_t>(want.size()));
  for (int64_t i = 0; i < c->size(); ++i) EXPECT_EQ(c->at(i), want[i]) << i;
  EXPECT_EQ(c->doc_starts(), (std::vector<int64_t>{0, second}));
  // The same inputs reuse the file; a changed input makes a new one.
  auto again = TokenCorpus::build(files, *tok, testing::data_path(kTok), dir + "/cache", &reused);
  EXPECT_TRUE(reused);
  EXPECT_EQ(again->path(), c->path());
  write_temp(dir, "b.txt", b + "!");
  auto changed = TokenCorpus::build(files, *tok, testing::data_path(kTok), dir + "/cache", &reused);
  EXPECT_FALSE(reused);
  EXPECT_NE(changed->path(), c->path());

  TokenWindows w;
  w.corpus = c;
  w.seq = 5;
  w.end = c->size();
  w.bos = tok->bos_id();
  ASSERT_EQ(w.size(), static_cast<size_t>(c->size() / 5));
  Example e;
  for (size_t k = 0; k < w.size(); ++k) {
    w.fill(k, e);
    EXPECT_EQ(e.tokens[0], tok->bos_id());
    for (int t = 0; t < 5; ++t) {
      const int32_t s = want[k * 5 + t];
      EXPECT_EQ(e.targets[t], s == tok->bos_id() ? -1 : s);
      if (t > 0) {
        EXPECT_EQ(e.tokens[t], want[k * 5 + t - 1]);
      }
    }
  }
  EXPECT_NE(error_of([&] { TokenCorpus::open(files[0]); }).find("not an edgellm token file"),
            std::string::npos);
  std::filesystem::remove_all(dir);
}

// Unigram entropy of the token stream of `text`, counted here from the tokenizer alone: the loss
// of the best model that ignores context.
double unigram_entropy(const std::string& text) {
  const auto tok = load_tokenizer(testing::data_path(kTok));
  std::map<int32_t, double> count;
  const std::vector<int32_t> ids = tok->encode(text);
  for (int32_t id : ids) count[id] += 1;
  double h = 0;
  for (const auto& [id, n] : count) h -= n / ids.size() * std::log(n / ids.size());
  return h;
}

PretrainOptions tiny_options(const std::string& dir, const std::string& text) {
  PretrainOptions p;
  p.shape = kTiny;
  p.tokenizer = testing::data_path(kTok);
  p.data = {text};
  p.out = dir;
  p.cache = dir + "/cache";
  p.val_frac = 0.05;
  p.o.seq = 64;
  p.o.batch = 2;
  p.o.grad_accum = 2;
  p.o.lr = 3e-3f;
  p.o.min_lr = 3e-4f;
  p.o.warmup = 10;
  p.o.schedule = LrSchedule::Cosine;
  p.o.adamw.weight_decay = 0.1f;
  p.o.adamw.max_grad_norm = 1.f;
  p.o.val_max = 4;
  p.o.seed = 3;
  return p;
}

TEST_F(PretrainTest, TwoLayerModelLearnsFarBelowUnigramEntropy) {
  EDGELLM_REQUIRE_DATA(kTok);
  EDGELLM_REQUIRE_DATA(testing::kShakespeare);
  const std::string dir = testing::temp_dir("pretrain");
  const std::string text = read_file(testing::data_path(testing::kShakespeare)).substr(0, 60000);
  const std::string file = write_temp(dir, "sh.txt", text);
  const double h = unigram_entropy(text);
  PretrainOptions p = tiny_options(dir + "/run", file);
  p.tokens = 400 * 256;  // 400 steps of 4 × 64 tokens
  p.o.lr = 6e-3f;
  const PretrainReport r = pretrain(p);
  EXPECT_EQ(r.steps, 400);
  const std::vector<double> l = metric_losses(dir + "/run/metrics.jsonl");
  ASSERT_EQ(l.size(), 400u);
  double tail = 0;
  for (size_t i = l.size() - 20; i < l.size(); ++i) tail += l[i] / 20;
  EXPECT_NEAR(l.front(), std::log(512.0), 0.3);  // starts at chance
  // 0.4 nats: a perplexity 1.5x below the best context-free model. Measured 0.78 (native
  // build), 0.57 (portable AVX-512 and AVX2 kernels): the runs agree to 1e-8 for 40 steps, then
  // fp32 rounding differences grow through the plateau near 4.7 nats and the model leaves it
  // some tens of steps earlier or later, so the margin must not depend on when.
  EXPECT_LT(tail, h - 0.4) << "unigram entropy " << h;
  EXPECT_GT(r.last.val_loss, 0);
  EXPECT_LT(r.last.val_loss, h);
  // The trained model is a loadable checkpoint of the requested shape.
  auto m = Model::load(dir + "/run");
  EXPECT_EQ(m->config().shape_spec(), ModelConfig::parse_shape(kTiny).shape_spec());
  EXPECT_TRUE(std::filesystem::exists(dir + "/run/pretrain.json"));
  std::filesystem::remove_all(dir);
}

TEST_F(PretrainTest, ResumedRunEqualsUninterruptedRun) {
  EDGELLM_REQUIRE_DATA(kTok);
  EDGELLM_REQUIRE_DATA(testing::kShakespeare);
  const std::string dir = testing::temp_dir("pt_resume");
  const std::string file = write_temp(
      dir, "sh.txt", read_file(testing::data_path(testing::kShakespeare)).substr(0, 20000));
  PretrainOptions p = tiny_options(dir + "/a", file);
  p.tokens = 12 * 256;
  p.o.val_every = 4;
  pretrain(p);
  PretrainOptions q = tiny_options(dir + "/b", file);
  q.tokens = p.tokens;
  q.o.val_every = 4;
  q.o.save_every = 5;
  pretrain(q, nullptr, nullptr, 7);  // stopped after step 7 (checkpoint saved there)
  EXPECT_EQ(metric_losses(dir + "/b/metrics.jsonl").size(), 7u);
  // A crash after a step's metrics line but before its checkpoint leaves a line the resumed run
  // redoes: it must not appear twice.
  std::ofstream(dir + "/b/metrics.jsonl", std::ios::app) << "{\"step\": 8, \"loss\": 9.0}\n";
  q.o.resume = true;
  pretrain(q);
  EXPECT_EQ(metric_losses(dir + "/a/metrics.jsonl"), metric_losses(dir + "/b/metrics.jsonl"));
  EXPECT_EQ(read_file(dir + "/a/model.safetensors"), read_file(dir + "/b/model.safetensors"));
  std::filesystem::remove_all(dir);
}

// Mixed precision (bf16 matmuls, fp32 master weights) with 8-bit AdamW moments: for the first
// 40 steps the loss follows the fp32 run's closely (later, when the model leaves its plateau
// moves with any rounding change — seeds 3-5 put the two runs' tails 0.02-0.37 nats apart either
// way, fp32 vs bf16 matmuls alone up to 0.23); 400 steps drive the loss as far below the unigram
// entropy as the fp32 test above requires; an interrupted run resumes exactly (the 8-bit codes
// and their scales come back from the checkpoint) and a mismatched --optim-state is refused.
// Under ASan (about 20× slower) the 400-step run is left to the release suite.
TEST_F(PretrainTest, Bf16MatmulsAnd8BitMomentsTrackFp32LearnAndResumeExactly) {
  EDGELLM_REQUIRE_DATA(kTok);
  EDGELLM_REQUIRE_DATA(testing::kShakespeare);
  const std::string dir = testing::temp_dir("pt_mixed");
  const std::string text = read_file(testing::data_path(testing::kShakespeare)).substr(0, 60000);
  const std::string file = write_temp(dir, "sh.txt", text);
  PretrainOptions f = tiny_options(dir + "/fp32", file);
  f.tokens = 40 * 256;
  f.o.lr = 6e-3f;
  PretrainOptions q = f;
  q.out = dir + "/mixed";
  q.o.precision = MatmulMath::Bf16;
  q.o.adamw.state = OptimState::Q8;
  const PretrainReport rf = pretrain(f);
  const PretrainReport rq = pretrain(q);
  const auto lf = metric_losses(dir + "/fp32/metrics.jsonl"),
             lq = metric_losses(dir + "/mixed/metrics.jsonl");
  ASSERT_EQ(lq.size(), 40u);
  EXPECT_NE(lf, lq);  // the options did change the arithmetic
  double worst = 0;
  for (size_t i = 0; i < lf.size(); ++i) worst = std::max(worst, std::abs(lf[i] - lq[i]));
  EXPECT_LT(worst, 0.05);
  // 8-bit moments: 2 bytes per parameter and two fp32 scales per 256, against 8 bytes.
  EXPECT_LT(rq.plan[MemCategory::Optimizer] * 3, rf.plan[MemCategory::Optimizer]);
  EXPECT_EQ(f32_matmul_math(), MatmulMath::Fp32) << "the run's precision leaked out of it";

  if (!testing::kUnderAsan) {
    PretrainOptions l = q;
    l.out = dir + "/learn";
    l.tokens = 400 * 256;
    const PretrainReport rl = pretrain(l);
    const auto ll = metric_losses(dir + "/learn/metrics.jsonl");
    double tail = 0;
    for (size_t i = ll.size() - 20; i < ll.size(); ++i) tail += ll[i] / 20;
    const double h = unigram_entropy(text);
    EXPECT_LT(tail, h - 0.4) << "unigram entropy " << h;
    EXPECT_LT(rl.last.val_loss, h);
  }

  PretrainOptions a = q, b = q;
  a.out = dir + "/a";
  b.out = dir + "/b";
  a.tokens = b.tokens = 12 * 256;
  b.o.save_every = 5;
  pretrain(a);
  pretrain(b, nullptr, nullptr, 7);
  b.o.resume = true;
  pretrain(b);
  EXPECT_EQ(metric_losses(dir + "/a/metrics.jsonl"), metric_losses(dir + "/b/metrics.jsonl"));
  EXPECT_EQ(read_file(dir + "/a/model.safetensors"), read_file(dir + "/b/model.safetensors"));
  // The checkpoint's moments must be resumed with the same storage.
  PretrainOptions c = b;
  c.o.adamw.state = OptimState::F32;
  c.tokens = 14 * 256;
  EXPECT_NE(error_of([&] { pretrain(c); }).find("8bit optimizer moments"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_F(PretrainTest, BadOptionsFailClearly) {
  EDGELLM_REQUIRE_DATA(kTok);
  const std::string dir = testing::temp_dir("pt_bad");
  const std::string file = write_temp(dir, "t.txt", "A short text.");
  PretrainOptions p = tiny_options(dir + "/o", file);
  p.tokens = 1000;
  p.o.lr = -1;
  EXPECT_NE(error_of([&] { pretrain(p); }).find("--lr -1"), std::string::npos);
  p.o.lr = 1e-3f;
  p.o.min_lr = 0;
  p.o.seq = 1000;
  EXPECT_NE(error_of([&] { pretrain(p); }).find("--seq 1000 outside [2, ctx=128]"),
            std::string::npos);
  p.o.seq = 64;
  EXPECT_NE(error_of([&] { pretrain(p); }).find("make no window"), std::string::npos);
  p.shape = "dim=64,layers=2,heads=4,kv_heads=2,ff=172,vocab=256,ctx=128";
  EXPECT_NE(error_of([&] { pretrain(p); }).find("more than vocab=256"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace edgellm
