// The --mem-budget planner of adaptive layer tuning (train/alt_planner.h) on a random bf16 model:
// a generous budget keeps the run's configuration; a shrinking one turns to smaller logit chunks,
// checkpointing, then a smaller window with more exits (every layer still covered); an
// impossible one is refused before anything is allocated, with the smallest plan in the
// message; the arenas and buffers of the chosen plan are the plan (planned = allocated), and the
// process's peak RSS over a few steps grows by the plan plus the runtime's constant slack.
#include "train/alt_planner.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/tensor_walk.h"
#include "kernels/gemm_bf16.h"
#include "kernels/threads.h"
#include "model/model.h"
#include "test_util.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/mapped_file.h"
#include "util/rng.h"

namespace edgellm {
namespace {

ModelConfig config(int L, int C, int FF, int V, int ctx) {
  ModelConfig c;
  c.dim = C;
  c.hidden_dim = FF;
  c.n_layers = L;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = C / 4;
  c.vocab_size = V;
  c.max_seq_len = ctx;
  c.norm_eps = 1e-5f;
  c.layers.resize(L);
  return c;
}

// Matrices stored as bf16 (the bf16 GEMM and its held buffers are on the step path), norms fp32.
std::unique_ptr<Model> random_bf16_model(const ModelConfig& c) {
  Checkpoint ck;
  ck.config = c;
  ck.path = "random";
  Rng r(3);
  for (const TensorSpec& s : model_tensor_specs(c)) {
    const bool norm = s.role == TensorRole::Norm;
    Tensor t = make_owned_tensor(s.name, norm ? DType::F32 : DType::BF16, s.shape);
    std::vector<float> v(static_cast<size_t>(t.numel()));
    for (float& x : v) x = static_cast<float>(norm ? 1.0 + 0.1 * r.normal() : 0.05 * r.normal());
    if (norm)
      std::memcpy(const_cast<uint8_t*>(t.data), v.data(), v.size() * 4);
    else
      f32_to_bf16_n(v.data(), reinterpret_cast<uint16_t*>(const_cast<uint8_t*>(t.data)), t.numel());
    ck.tensors.add(std::move(t));
  }
  return std::make_unique<Model>(std::move(ck));
}

Dataset random_data(int V, int64_t seq, int n) {
  Dataset d;
  d.source = "random";
  d.kind = "text";
  Rng r(11);
  for (int i = 0; i < n + 2; ++i) {
    Example e;
    for (int64_t t = 0; t <= seq; ++t) e.tokens.push_back(static_cast<int32_t>(r.next() % V));
    e.targets.assign(e.tokens.begin() + 1, e.tokens.end());
    e.tokens.pop_back();
    (i < n ? d.train : d.val).push_back(std::move(e));
  }
  return d;
}

TuneOptions alt_opts(int64_t seq, int64_t budget) {
  TuneOptions o;
  o.method = TuneMethod::Alt;
  o.steps = 3;
  o.seq = seq;
  o.val_max = 1;
  o.mem_budget = budget;
  return o;
}

using testing::error_of;

// Every layer below the deepest exit lies in the window of some exit.
bool covers_every_layer(const std::vector<int>& depths, int m) {
  int prev = 0;
  for (int d : depths) {
    if (d - prev > m) return false;
    prev = d;
  }
  return true;
}

class AltPlanner : public ::testing::Test {
 protected:
  void SetUp() override {
    set_num_threads(1);
    m_ = random_bf16_model(config(8, 64, 160, 512, 64));
    data_ = std::make_unique<Dataset>(random_data(512, 64, 6));
  }
  void TearDown() override { set_num_threads(0); }
  // Plan of the run without a budget (the run's own configuration).
  MemoryPlan unbudgeted(TuneOptions o) {
    o.mem_budget = 0;
    return Trainer(*m_, *data_, o).plan();
  }
  std::unique_ptr<Model> m_;
  std::unique_ptr<Dataset> data_;
};

TEST_F(AltPlanner, GenerousBudgetKeepsTheRunsConfiguration) {
  const TuneOptions o = alt_opts(64, int64_t(1) << 30);
  Trainer tr(*m_, *data_, o);
  const AltPlanChoice* ch = tr.alt_plan_choice();
  ASSERT_NE(ch, nullptr);
  EXPECT_EQ(ch->tried.size(), 1u);
  EXPECT_FALSE(ch->knobs.checkpoint);
  EXPECT_EQ(ch->knobs.head_rows, 128);
  EXPECT_EQ(ch->knobs.window, 2);  // ceil(8 / 4)
  EXPECT_EQ(ch->knobs.depths, (std::vector<int>{2, 4, 6, 8}));
  EXPECT_EQ(tr.plan().bytes, unbudgeted(o).bytes);
  EXPECT_EQ(tr.plan_json()["planner"]["chosen"], ch->knobs.describe());
}

TEST_F(AltPlanner, ShrinkingBudgetChecksPointsThenShrinksTheWindowWithMoreExits) {
  TuneOptions base = alt_opts(64, 0);
  const size_t full = unbudgeted(base).total();
  TuneOptions ck = base;
  ck.checkpoint_activations = true;
  const size_t ckpt = unbudgeted(ck).total();
  ASSERT_LT(ckpt, full);
  // Walk the budget down a KiB at a time from the unbudgeted plan: the candidate index never
  // goes back, each choice fits and every candidate before it did not.
  size_t prev_index = 0;
  bool saw_ckpt = false, saw_small_window = false;
  for (int64_t b = static_cast<int64_t>(full); b > 0; b -= 16 << 10) {
    TuneOptions o = base;
    o.mem_budget = b;
    std::unique_ptr<Trainer> tr;
    try {
      tr = std::make_unique<Trainer>(*m_, *data_, o);
    } catch (const Error&) {
      break;  // below the smallest plan (the next test)
    }
    const AltPlanChoice& ch = *tr->alt_plan_choice();
    EXPECT_LE(ch.plan.total(), static_cast<size_t>(b));
    for (size_t i = 0; i + 1 < ch.tried.size(); ++i)
      EXPECT_GT(ch.tried[i].second, static_cast<size_t>(b)) << ch.tried[i].first.describe();
    EXPECT_GE(ch.tried.size(), prev_index);
    prev_index = ch.tried.size();
    EXPECT_TRUE(covers_every_layer(ch.knobs.depths, ch.knobs.window)) << ch.knobs.describe();
    EXPECT_EQ(tr->plan().bytes, ch.plan.bytes);
    // The knobs are in force: the engine's window and the run's options.
    EXPECT_EQ(tr->engine().window(), ch.knobs.window);
    EXPECT_EQ(tr->options().checkpoint_activations, ch.knobs.checkpoint);
    EXPECT_EQ(tr->exit_heads()->config().depths, ch.knobs.depths);
    if (ch.knobs.window == 2 && ch.knobs.checkpoint) saw_ckpt = true;
    if (ch.knobs.window < 2) {
      saw_small_window = true;
      EXPECT_TRUE(saw_ckpt) << "window shrunk before checkpointing was tried";
      EXPECT_EQ(ch.knobs.depths.size(), 8u);  // ceil(8 / 1) exits
    }
  }
  EXPECT_TRUE(saw_ckpt);
  EXPECT_TRUE(saw_small_window);
}

TEST_F(AltPlanner, ImpossibleBudgetIsRefusedBeforeAnyStepWithTheSmallestPlan) {
  TuneOptions o = alt_opts(64, 200 << 10);  // 200 KiB: below the weights alone
  o.out = testing::temp_dir("planner_refused");
  std::filesystem::remove_all(o.out);
  // The smallest candidate, priced on its own: window 1, 8 exits, checkpointing, 8 logit rows.
  TuneOptions small = o;
  small.mem_budget = 0;
  small.checkpoint_activations = true;
  small.head_rows = 8;
  small.alt.window = 1;
  small.alt.exits = 8;
  const size_t smallest = unbudgeted(small).total();
  const std::string e = error_of([&] { Trainer tr(*m_, *data_, o); });
  EXPECT_NE(e.find("--mem-budget 0.2 MiB"), std::string::npos) << e;
  EXPECT_NE(e.find("smallest plan found"), std::string::npos) << e;
  EXPECT_NE(e.find(fmt::format("needs {:.1f} MiB", smallest / 1048576.0)), std::string::npos) << e;
  EXPECT_NE(e.find("activations"), std::string::npos) << e;
  EXPECT_NE(e.find("window 1"), std::string::npos) << e;
  EXPECT_FALSE(std::filesystem::exists(o.out));  // nothing ran, nothing was written
}

TEST_F(AltPlanner, UserFixedValuesAreKept) {
  TuneOptions base = alt_opts(64, 0);
  base.alt.window = 2;  // fixed: the window may not shrink, exits stay 4
  base.checkpoint_activations = true;
  const size_t fixed_min = unbudgeted(base).total();
  TuneOptions o = base;
  o.mem_budget = static_cast<int64_t>(fixed_min) - 1;
  // Only logit rows remain to search: 8 rows fit below the 128-row plan.
  Trainer tr(*m_, *data_, o);
  EXPECT_EQ(tr.alt_plan_choice()->knobs.window, 2);
  EXPECT_TRUE(tr.alt_plan_choice()->knobs.checkpoint);
  EXPECT_EQ(tr.alt_plan_choice()->knobs.depths, (std::vector<int>{2, 4, 6, 8}));
  EXPECT_LT(tr.alt_plan_choice()->knobs.head_rows, 128);
  // --exits 4 fixed: the window stays at the widest gap (2) however small the budget.
  for (const AltKnobs& k : alt_candidates({8, {{2, 4, 6, 8}, 2, false, 128, 0}, true}))
    EXPECT_EQ(k.window, 2);
}

// A window of 4 (2 exits on 8 layers): partial checkpointing comes before checkpointing, one more
// recomputed layer at a time; --recompute-layers is the least any candidate recomputes.
TEST_F(AltPlanner, PartialCheckpointingComesBeforeCheckpointing) {
  TuneOptions base = alt_opts(64, 0);
  base.alt.exits = 2;
  TuneOptions one = base;
  one.recompute_layers = 1;
  one.head_rows = 32;
  TuneOptions o = base;
  o.mem_budget = static_cast<int64_t>(unbudgeted(one).total());
  Trainer tr(*m_, *data_, o);
  const AltKnobs& k = tr.alt_plan_choice()->knobs;
  EXPECT_EQ(k.window, 4);
  EXPECT_FALSE(k.checkpoint);
  EXPECT_EQ(k.recompute, 1);
  EXPECT_EQ(k.head_rows, 32);
  EXPECT_EQ(tr.plan().bytes, unbudgeted(one).bytes);
  EXPECT_EQ(tr.plan_json()["recompute_layers"], 1);
  EXPECT_NE(k.describe().find("1 of 4 window layers recomputed"), std::string::npos)
      << k.describe();
  // Candidates at window 4: K = 0, 1, 2 partial, then checkpointing (K = 3), each at 128 and 32
  // logit rows, checkpointing also at 8; a user's K = 2 removes K = 0 and 1.
  AltPlanRequest r{8, {{4, 8}, 4, false, 128, 0}, false};
  r.window_fixed = true;
  std::vector<int> ks;
  for (const AltKnobs& c : alt_candidates(r)) ks.push_back(c.checkpoint ? 3 : c.recompute);
  EXPECT_EQ(ks, (std::vector<int>{0, 0, 1, 1, 2, 2, 3, 3, 3}));
  r.recompute_min = 2;
  ks.clear();
  for (const AltKnobs& c : alt_candidates(r)) ks.push_back(c.checkpoint ? 3 : c.recompute);
  EXPECT_EQ(ks, (std::vector<int>{2, 2, 3, 3, 3}));
}

TEST_F(AltPlanner, BranchPrefixCacheIsPlannedAtItsCap) {
  TuneOptions o = alt_opts(64, 0);
  o.alt.lora_mode = ExitLoraMode::Branch;
  o.alt.prefix_cache_mb = 3;
  const MemoryPlan p = unbudgeted(o);
  EXPECT_EQ(p[MemCategory::PrefixCache], size_t(3) << 20);
  // With a budget and the cap not set by the user, the cache gets what is left (whole MiB).
  o.mem_budget = static_cast<int64_t>(p.total() - p[MemCategory::PrefixCache]) + (1 << 20) + 5;
  Trainer tr(*m_, *data_, o);
  EXPECT_EQ(tr.plan()[MemCategory::PrefixCache], size_t(1) << 20);
  EXPECT_FALSE(tr.alt_plan_choice()->knobs.checkpoint);
  // Set by the user: counted in full; no other knob of this small model saves 2 MiB.
  o.alt.prefix_cache_set = true;
  const std::string e = error_of([&] { Trainer tr2(*m_, *data_, o); });
  EXPECT_NE(e.find("prefix cache 3 MiB"), std::string::npos) << e;
  EXPECT_NE(e.find("prefix_cache        3.0 MiB"), std::string::npos) << e;
}

// Allocated equals planned in every category before step 1 and after the run's steps (nothing
// grows on the step path); transient workspace lives only inside kernel calls.
void run_checking_plan(Trainer& tr) {
  const MemoryPlan& p = tr.plan();
  const size_t transient = tr.engine().gemm_workspace().transient;
  auto check = [&](const char* when) {
    const MemoryPlan a = tr.allocated();
    for (int k = 0; k < kMemCategories; ++k) {
      const auto c = static_cast<MemCategory>(k);
      if (c == MemCategory::Workspace)
        EXPECT_EQ(a[c], p[c] - transient) << when;
      else
        EXPECT_EQ(a[c], p[c]) << when << ": " << mem_category_name(c);
    }
  };
  check("before step 1");
  tr.run();
  check("after the steps");
}

TEST_F(AltPlanner, PlannedEqualsAllocated) {
  for (const int64_t budget_kb : {int64_t(1) << 20, int64_t(0)}) {
    TuneOptions o = alt_opts(64, budget_kb << 10);
    if (budget_kb == 0) {  // a budget that forces checkpointing or a smaller window
      TuneOptions c = o;
      c.checkpoint_activations = true;
      o.mem_budget = static_cast<int64_t>(unbudgeted(c).total()) - 1;
    }
    gemm_bf16_release_held();  // the run's reservation is then all gemm_bf16 holds
    Trainer tr(*m_, *data_, o);
    run_checking_plan(tr);
    EXPECT_GT(tr.engine().gemm_workspace().operand, 0u);  // the bf16 GEMM was on the path
  }
}

// The same for mixed precision and 8-bit moments: ALT (bf16 base, shared heads) and full
// fine-tuning, whose fp32 weights then take sgemm_bf16 for the forward, dx and dW (the second
// operand's copy planned); the 8-bit state's exact size replaces its planned upper bound. Cloned
// heads under bf16 math are refused (their GEMMs are not planned).
TEST_F(AltPlanner, PlannedEqualsAllocatedWithBf16MathAnd8BitMoments) {
  for (const TuneMethod method : {TuneMethod::Alt, TuneMethod::Full}) {
    TuneOptions o = alt_opts(64, 0);
    o.method = method;
    o.precision = MatmulMath::Bf16;
    o.adamw.state = OptimState::Q8;
    gemm_bf16_release_held();
    Trainer tr(*m_, *data_, o);
    run_checking_plan(tr);
    if (method == TuneMethod::Full && bf16_gemm_path() == Bf16GemmPath::Dnnl) {
      EXPECT_GT(tr.engine().gemm_workspace().operand_b, 0u);  // sgemm_bf16 was on the path
    }
  }
  EXPECT_EQ(f32_matmul_math(), MatmulMath::Fp32);
  TuneOptions c = alt_opts(64, 0);
  c.precision = MatmulMath::Bf16;
  c.alt.head_mode = ExitHeadMode::Cloned;
  EXPECT_NE(error_of([&] { Trainer(*m_, *data_, c); }).find("--head-mode cloned"),
            std::string::npos);
}

// Peak RSS of a few ALT steps, measured in a fresh child process (this binary re-run on the test
// below) so that no earlier test's peak hides the run's; see docs/alt.md for the slack.
constexpr const char* kRssEnv = "EDGELLM_RSS_CHILD_OUT";

TEST(AltPlannerRss, Child) {
  const char* out = std::getenv(kRssEnv);
  if (!out) GTEST_SKIP() << "run by AltPlannerRss.PeakGrowthIsThePlanPlusRuntimeSlack";
  set_num_threads(1);
  auto m = random_bf16_model(config(6, 256, 688, 2048, 256));
  const Dataset d = random_data(2048, 256, 4);
  TuneOptions o = alt_opts(256, 0);
  o.alt.exits = 3;
  const RssMark mark = start_rss_measurement();
  Trainer tr(*m, d, o);
  tr.run();
  const size_t hwm = hwm_rss_bytes();
  std::ofstream(out) << nlohmann::json{
      {"reset", mark.reset},
      {"before", mark.rss},
      {"hwm", hwm},
      {"plan",
       tr.plan().to_json()}}.dump();
}

TEST(AltPlannerRss, PeakGrowthIsThePlanPlusRuntimeSlack) {
  if (testing::kUnderAsan) GTEST_SKIP() << "resident memory under AddressSanitizer is its own";
  const std::string dir = testing::temp_dir("rss");
  const std::string out = dir + "/rss.json";
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  ASSERT_GT(n, 0);
  exe[n] = 0;
  const std::string launcher = EDGELLM_CLI_LAUNCHER;
  const std::string cmd = std::string(kRssEnv) + "=" + out + " OMP_NUM_THREADS=1 " +
                          (launcher.empty() ? "" : launcher + " ") + exe +
                          " --gtest_filter=AltPlannerRss.Child > " + dir + "/log 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_file(dir + "/log");
  const nlohmann::json j = nlohmann::json::parse(read_file(out));
  std::filesystem::remove_all(dir);
  if (!j["reset"].get<bool>()) GTEST_SKIP() << "the kernel's peak-RSS mark cannot be reset here";
  const double mib = 1048576.0;
  const nlohmann::json& p = j["plan"];
  // The weights were resident before the measurement started (the model is built in memory).
  const double planned = (p["total"].get<double>() - p["weights"].get<double>()) / mib;
  const double growth = (j["hwm"].get<double>() - j["before"].get<double>()) / mib;
  // Everything but the attention probabilities and the workspace is zero-filled at allocation,
  // so resident: the growth is at least that; at most the plan plus the runtime's one-time
  // memory (oneDNN's JIT kernels and sgemm buffers, OpenMP), measured at 7-9 MiB.
  const double touched = planned - (p["workspace"].get<double>()) / mib - 1.0;
  EXPECT_GE(growth, touched) << "plan " << planned << " MiB";
  EXPECT_LE(growth, planned + 12.0) << "plan " << planned << " MiB";
  std::printf("plan (without weights) %.1f MiB, peak RSS growth %.1f MiB\n", planned, growth);
}

}  // namespace
}  // namespace edgellm
