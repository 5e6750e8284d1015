// Adaptive layer tuning end to end on stories260K (5 layers, exits after 2, 3, 4, 5; window 2):
// each step runs exactly its exit's depth of layer forwards and updates only its window and
// head; the branch-mode prefix cache changes no number; a resumed run is exact (exit sequence,
// losses, adapters, exit heads); AdamW's span flags leave the other spans untouched.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "eval/model_files.h"
#include "kernels/threads.h"
#include "model/exit_heads.h"
#include "test_util.h"
#include "train/data.h"
#include "train/optimizer.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/mapped_file.h"
#include "util/rng.h"

namespace edgellm {
namespace {

class Alt : public ::testing::Test {
 protected:
  void SetUp() override {
    set_num_threads(1);
    if (!std::filesystem::exists(testing::stories260k_path()) ||
        !std::filesystem::exists(testing::data_path(testing::kShakespeare)))
      GTEST_SKIP() << "stories260K or tinyshakespeare missing (set EDGELLM_DATA)";
    m_ = Model::load(testing::stories260k_path());
    tok_ = load_tokenizer_for(*m_, "");
    dir_ = testing::temp_dir("alt");
    const std::string train = dir_ + "/train.txt";
    std::ofstream(train) << read_file(testing::data_path(testing::kShakespeare)).substr(0, 6000);
    data_ = std::make_unique<Dataset>(load_text_dataset(train, *tok_, 32, 0.1));
  }
  void TearDown() override {
    set_num_threads(0);
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  TuneOptions opts(int64_t steps) const {
    TuneOptions o;
    o.method = TuneMethod::Alt;
    o.steps = steps;
    o.seq = 32;
    o.lr = 2e-3f;
    o.seed = 5;
    o.val_max = 4;
    return o;
  }
  Dataset small_data();
  // Branch mode, round-robin over the exits, a 16 MiB prefix cache (holds small_data()).
  TuneOptions branch_cache_opts(int64_t steps) const {
    TuneOptions o = opts(steps);
    o.alt.lora_mode = ExitLoraMode::Branch;
    o.alt.schedule = ExitSchedule::RoundRobin;
    o.alt.prefix_cache_mb = 16;
    return o;
  }
  std::shared_ptr<Model> m_;
  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<Dataset> data_;
  std::string dir_;
};

TEST_F(Alt, EachStepForwardsToItsExitAndUpdatesOnlyItsWindowAndHead) {
  TuneOptions o = opts(12);
  o.alt.prefix_cache_mb = 0;  // every step runs from the embeddings
  o.val_max = 0;              // no validation runs after the last step
  Trainer tr(*m_, *data_, o);
  const int L = m_->config().n_layers;
  ASSERT_EQ(L, 5);
  ExitHeads& h = *tr.exit_heads();
  ASSERT_EQ(h.config().depths, (std::vector<int>{2, 3, 4, 5}));
  ASSERT_EQ(h.config().window, 2);
  EXPECT_FALSE(h.own(3));  // depth L: the model's own head
  std::vector<float> lora_before, heads_before;
  int seen_exits = 0;
  tr.run([&](const StepLog& s) {
    const std::vector<float>& lora = tr.lora()->params();
    const std::vector<float>& heads = h.params();
    // Work counted, not assumed: one layer forward per layer up to the exit, none above.
    EXPECT_EQ(tr.engine().layer_forwards(), s.exit_depth) << "step " << s.step;
    EXPECT_EQ(s.exit_depth, h.depth(s.exit));
    seen_exits |= 1 << s.exit;
    if (!lora_before.empty()) {
      const int l0 = std::max(0, s.exit_depth - 2);
      for (int l = 0; l < L; ++l) {
        const LoraLinear& a = tr.lora()->at(l, LoraTarget::Q);
        const LoraLinear& b = tr.lora()->at(l, LoraTarget::Down);
        bool changed = false;
        for (size_t i = a.a; i < b.b + static_cast<size_t>(b.out * 8); ++i)
          changed |= lora[i] != lora_before[i];
        EXPECT_EQ(changed, l >= l0 && l < s.exit_depth) << "step " << s.step << " layer " << l;
      }
      for (int i = 0; i < h.n_exits(); ++i) {
        if (!h.own(i)) continue;
        bool changed = false;
        for (size_t k = 0; k < h.params_of(i); ++k)
          changed |= heads[h.norm_offset(i) + k] != heads_before[h.norm_offset(i) + k];
        EXPECT_EQ(changed, i == s.exit) << "step " << s.step << " exit " << i;
      }
    }
    lora_before = lora;
    heads_before = heads;
  });
  EXPECT_EQ(seen_exits, 0xf);  // 12 random picks reached all 4 exits (seed 5)
  EXPECT_EQ(tr.exit_sequence().size(), 12u);
}

std::vector<double> alt_losses(const Model& m, const Dataset& d, const TuneOptions& o,
                               int64_t stop_after, std::vector<int>* exits = nullptr,
                               PrefixCacheStats* cs = nullptr) {
  std::vector<double> out;
  Trainer tr(m, d, o);
  tr.run(
      [&](const StepLog& s) {
        out.push_back(s.loss);
        if (exits) exits->push_back(s.exit);
      },
      stop_after);
  if (cs) *cs = tr.prefix_cache_stats();
  return out;
}

// A dozen training sequences of 32 tokens (the first 600 bytes of Shakespeare): in a few dozen
// steps each (sequence, window) recurs across epochs, so a prefix cache hits.
Dataset Alt::small_data() {
  const std::string small = dir_ + "/small.txt";
  std::ofstream(small) << read_file(testing::data_path(testing::kShakespeare)).substr(0, 600);
  return load_text_dataset(small, *tok_, 32, 0.1);
}

TEST_F(Alt, BranchPrefixCacheHitsAndChangesNoLoss) {
  const Dataset d = small_data();
  ASSERT_LT(d.n_train(), 20u);
  TuneOptions o = opts(60);
  o.alt.lora_mode = ExitLoraMode::Branch;
  o.lora.dropout = 0.1f;  // dropout in the window must be reproduced on a hit too
  std::vector<int> e0, e1;
  PrefixCacheStats off, on;
  o.alt.prefix_cache_mb = 0;
  const std::vector<double> a = alt_losses(*m_, d, o, -1, &e0, &off);
  o.alt.prefix_cache_mb = 16;
  const std::vector<double> b = alt_losses(*m_, d, o, -1, &e1, &on);
  EXPECT_EQ(off.hits + off.misses, 0);
  EXPECT_GT(on.hits, 0);
  EXPECT_EQ(on.entries, on.misses);  // 16 MiB holds them all
  EXPECT_EQ(on.bytes, static_cast<size_t>(on.entries) * 32 * 64 * sizeof(float));
  EXPECT_EQ(e0, e1);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << "step " << i + 1;
  // Cumulative mode runs the adapters below the window: no cache, and other losses.
  o.alt.lora_mode = ExitLoraMode::Cumulative;
  PrefixCacheStats cum;
  const std::vector<double> c = alt_losses(*m_, d, o, -1, nullptr, &cum);
  EXPECT_EQ(cum.hits + cum.misses, 0);
  bool differs = false;
  for (size_t i = 0; i < a.size(); ++i) differs |= a[i] != c[i];
  EXPECT_TRUE(differs);
}

// bf16 / int8 prefix caches: the window trains on the rounded input on a hit and on a miss
// alike, so the cache (and a resume, which starts it cold) changes no loss; the rounding itself
// moves the losses a little against the exact f32 cache.
TEST_F(Alt, QuantizedPrefixCacheChangesNoLossAndResumesExactly) {
  const Dataset d = small_data();
  TuneOptions o = branch_cache_opts(30);
  o.lora.dropout = 0.1f;
  const std::vector<double> exact = alt_losses(*m_, d, o, -1);
  for (PrefixCacheDType dt : {PrefixCacheDType::BF16, PrefixCacheDType::Int8}) {
    const char* name = prefix_cache_dtype_name(dt);
    o.alt.prefix_cache_dtype = dt;
    PrefixCacheStats cs;
    o.out = dir_ + "/a";
    const std::vector<double> a = alt_losses(*m_, d, o, -1, nullptr, &cs);
    EXPECT_GT(cs.hits, 0) << name;
    // Hand count: per token row 64 values of 2 bytes, or 64 codes and a 4-byte scale.
    const size_t row = dt == PrefixCacheDType::BF16 ? 64 * 2 : 64 + 4;
    EXPECT_EQ(cs.bytes, static_cast<size_t>(cs.entries) * 32 * row) << name;
    o.out = dir_ + "/b";
    std::vector<double> b = alt_losses(*m_, d, o, 15);
    o.resume = true;
    for (double l : alt_losses(*m_, d, o, -1)) b.push_back(l);
    o.resume = false;
    ASSERT_EQ(a.size(), exact.size()) << name;
    ASSERT_EQ(b.size(), a.size()) << name;
    double moved = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i], b[i]) << name << " step " << i + 1;
      moved = std::max(moved, std::fabs(a[i] - exact[i]));
    }
    EXPECT_GT(moved, 0) << name;     // the window saw rounded inputs
    EXPECT_LT(moved, 0.05) << name;  // by at most 2^-8 (bf16) or 1/254 of a row's max (int8)
    EXPECT_EQ(read_file(dir_ + "/a/adapter_model.safetensors"),
              read_file(dir_ + "/b/adapter_model.safetensors"))
        << name;
    std::filesystem::remove_all(dir_ + "/a");
    std::filesystem::remove_all(dir_ + "/b");
  }
}

// The cache on disk (a file in --prefix-cache-dir) trains exactly as in memory, and plans one
// entry of memory instead of its cap.
TEST_F(Alt, OnDiskPrefixCacheTrainsAsInMemory) {
  const Dataset d = small_data();
  TuneOptions o = branch_cache_opts(24);
  for (PrefixCacheDType dt : {PrefixCacheDType::F32, PrefixCacheDType::Int8}) {
    const char* name = prefix_cache_dtype_name(dt);
    o.alt.prefix_cache_dtype = dt;
    o.alt.prefix_cache_dir.clear();
    PrefixCacheStats mem_stats, disk_stats;
    o.out = dir_ + "/mem";
    const std::vector<double> mem = alt_losses(*m_, d, o, -1, nullptr, &mem_stats);
    o.alt.prefix_cache_dir = dir_;
    o.out = dir_ + "/disk";
    const std::vector<double> disk = alt_losses(*m_, d, o, -1, nullptr, &disk_stats);
    EXPECT_GT(disk_stats.hits, 0) << name;
    EXPECT_EQ(disk_stats.hits, mem_stats.hits) << name;
    EXPECT_EQ(disk_stats.bytes, mem_stats.bytes) << name;
    EXPECT_EQ(disk, mem) << name;
    EXPECT_EQ(read_file(dir_ + "/mem/adapter_model.safetensors"),
              read_file(dir_ + "/disk/adapter_model.safetensors"))
        << name;
    const auto plan = [&](const std::string& run) {
      return nlohmann::json::parse(
          read_file(dir_ + "/" + run + "/run.json"))["memory_plan"]["prefix_cache"];
    };
    EXPECT_EQ(plan("mem").get<size_t>(), size_t{16} << 20) << name;
    EXPECT_EQ(plan("disk").get<size_t>(), prefix_cache_entry_bytes(dt, 32, 64)) << name;
    std::filesystem::remove_all(dir_ + "/mem");
    std::filesystem::remove_all(dir_ + "/disk");
  }
  // Nothing is left beside the runs (the cache file was unlinked when created).
  for (const auto& e : std::filesystem::directory_iterator(dir_))
    EXPECT_EQ(e.path().filename().string().find("prefix-cache"), std::string::npos) << e.path();
}

// Offloaded AdamW moments (--optim-offload) train exactly as in memory, a checkpoint moves between
// the two storages both ways, the plan holds the staging buffer, and no file is left behind.
TEST_F(Alt, OffloadedOptimizerTrainsAsInMemoryAndResumesAcrossStorage) {
  TuneOptions o = opts(10);
  o.alt.schedule = ExitSchedule::RoundRobin;
  o.adamw.weight_decay = 0.01f;
  const std::string off_dir = dir_ + "/moments";
  std::filesystem::create_directories(off_dir);
  o.out = dir_ + "/mem";
  const std::vector<double> mem = alt_losses(*m_, *data_, o, -1);
  o.out = dir_ + "/disk";
  o.adamw.offload_dir = off_dir;
  EXPECT_EQ(alt_losses(*m_, *data_, o, -1), mem);
  // Half in one storage, resumed in the other.
  for (const bool first_on_disk : {true, false}) {
    o.out = dir_ + (first_on_disk ? "/disk_then_mem" : "/mem_then_disk");
    o.resume = false;
    o.adamw.offload_dir = first_on_disk ? off_dir : "";
    std::vector<double> resumed = alt_losses(*m_, *data_, o, 5);
    o.resume = true;
    o.adamw.offload_dir = first_on_disk ? "" : off_dir;
    for (double l : alt_losses(*m_, *data_, o, -1)) resumed.push_back(l);
    EXPECT_EQ(resumed, mem) << o.out;
    for (const char* f : {"adapter_model.safetensors", "exit_heads.safetensors"})
      EXPECT_EQ(read_file(o.out + "/" + f), read_file(dir_ + "/mem/" + f)) << o.out << " " << f;
  }
  for (const char* f : {"adapter_model.safetensors", "exit_heads.safetensors"})
    EXPECT_EQ(read_file(dir_ + "/disk/" + f), read_file(dir_ + "/mem/" + f)) << f;
  // The plan: all moments in memory, the staging buffer when offloaded.
  const auto run = [&](const std::string& r) {
    return nlohmann::json::parse(read_file(dir_ + "/" + r + "/run.json"));
  };
  const size_t moments = run("mem")["memory_plan"]["optimizer"].get<size_t>();
  const size_t staged = run("disk")["memory_plan"]["optimizer"].get<size_t>();
  EXPECT_EQ(moments % (2 * sizeof(float)), 0u);
  EXPECT_EQ(staged, adamw_offload_stage_bytes(moments / (2 * sizeof(float)), OptimState::F32));
  EXPECT_LE(staged, moments);  // equal here: stories260K's moments fit one staged slice
  EXPECT_EQ(run("disk")["optim_storage"], "disk");
  EXPECT_EQ(run("mem")["optim_storage"], "memory");
  EXPECT_TRUE(std::filesystem::is_empty(off_dir));
}

TEST_F(Alt, ResumeIsExact) {
  for (ExitHeadMode hm : {ExitHeadMode::Shared, ExitHeadMode::Cloned}) {
    TuneOptions o = opts(10);
    o.alt.head_mode = hm;
    o.alt.lora_mode = hm == ExitHeadMode::Cloned ? ExitLoraMode::Cumulative : ExitLoraMode::Branch;
    o.alt.schedule = ExitSchedule::Curriculum;
    o.lora.dropout = 0.1f;
    o.batch = 2;
    o.schedule = LrSchedule::Cosine;
    o.warmup = 2;
    o.adamw.weight_decay = 0.01f;
    std::vector<int> ea, eb;
    o.out = dir_ + "/a";
    const std::vector<double> full = alt_losses(*m_, *data_, o, -1, &ea);
    o.out = dir_ + "/b";
    std::vector<double> resumed = alt_losses(*m_, *data_, o, 5, &eb);
    o.resume = true;
    for (double l : alt_losses(*m_, *data_, o, -1, &eb)) resumed.push_back(l);
    const char* mode = exit_head_mode_name(hm);
    ASSERT_EQ(full.size(), 10u) << mode;
    EXPECT_EQ(ea, eb) << mode;
    for (size_t i = 0; i < full.size(); ++i) EXPECT_EQ(full[i], resumed[i]) << mode << " " << i;
    for (const char* f :
         {"adapter_model.safetensors", "exit_heads.safetensors", "edgellm_exits.json"})
      EXPECT_EQ(read_file(dir_ + "/a/" + f), read_file(dir_ + "/b/" + f)) << mode << " " << f;
    // metrics.jsonl names each step's exit.
    std::ifstream in(dir_ + "/b/metrics.jsonl");
    std::string line;
    size_t n = 0;
    while (std::getline(in, line)) {
      EXPECT_NE(line.find("\"exit\":" + std::to_string(eb[n])), std::string::npos) << line;
      ++n;
    }
    EXPECT_EQ(n, 10u);
    // The saved heads reload into the values the run trained.
    const ExitHeads re = ExitHeads::load(dir_ + "/a", m_->config());
    EXPECT_EQ(re.config().head_mode, hm);
    std::filesystem::remove_all(dir_ + "/a");
    std::filesystem::remove_all(dir_ + "/b");
  }
}

TEST(AdamWSpans, InactiveSpansAreLeftAloneAndCountTheirOwnSteps) {
  std::vector<float> p{1, 1, 1, 1}, g{0.5f, 0.5f, 0.5f, 0.5f};
  AdamWConfig c;
  c.max_grad_norm = 0;
  c.weight_decay = 0.1f;
  AdamW opt({{p.data(), g.data(), 2, true}, {p.data() + 2, g.data() + 2, 2, true}}, c);
  const std::vector<char> first{1, 0};
  opt.step(0.1f, &first);
  EXPECT_EQ(p[2], 1.f);  // no update, no decay
  EXPECT_EQ(p[3], 1.f);
  float m2 = 1.f;
  opt.read_section(AdamW::kState, 2 * sizeof(float), sizeof(float),
                   reinterpret_cast<uint8_t*>(&m2));
  EXPECT_EQ(m2, 0.f);  // no moment
  EXPECT_EQ(opt.span_steps(), (std::vector<int64_t>{1, 0}));
  // First update of span 1 at optimizer step 2: bias correction of ITS first step, so the
  // Adam step is lr·g/|g| = lr exactly (plus decay), as for span 0 at step 1.
  const std::vector<char> second{0, 1};
  opt.step(0.1f, &second);
  EXPECT_FLOAT_EQ(p[2], p[0]);
  EXPECT_NEAR(p[0], 1.f - 0.1f * 0.1f - 0.1f, 1e-6);
  EXPECT_EQ(opt.span_steps(), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(opt.t(), 2);
}

// Offloaded moments take the same steps bit for bit, in fp32 and 8-bit, across spans longer than a
// staged slice and with spans left out; memory holds the staging buffer only.
TEST(AdamWOffload, StepsBitForBitAsInMemory) {
  const std::string dir = testing::temp_dir("adamw_offload");
  for (OptimState st : {OptimState::F32, OptimState::Q8}) {
    const std::vector<size_t> sizes{100, 150001, 7, 65536};
    size_t n = 0;
    for (size_t k : sizes) n += k;
    Rng rng(3);
    std::vector<float> p0(n), g(n);
    for (size_t i = 0; i < n; ++i) {
      p0[i] = rng.normal();
      g[i] = 0.1f * rng.normal();
    }
    std::vector<float> pm = p0, pd = p0;
    auto spans = [&](std::vector<float>& p) {
      std::vector<ParamSpan> s;
      size_t off = 0;
      for (size_t k = 0; k < sizes.size(); ++k) {
        s.push_back({p.data() + off, g.data() + off, sizes[k], k % 2 == 0});
        off += sizes[k];
      }
      return s;
    };
    AdamWConfig c;
    c.state = st;
    c.weight_decay = 0.05f;
    c.max_grad_norm = 0.5f;
    AdamW mem(spans(pm), c);
    c.offload_dir = dir;
    AdamW disk(spans(pd), c);
    EXPECT_TRUE(disk.offloaded());
    EXPECT_EQ(disk.state_bytes(), adamw_offload_stage_bytes(n, st));
    EXPECT_LT(disk.state_bytes(), adamw_state_bytes(n, sizes.size(), st) / 3);
    const std::vector<std::vector<char>> active{{1, 1, 1, 1}, {0, 1, 0, 1}, {1, 0, 1, 0}};
    for (int t = 0; t < 6; ++t) {
      const std::vector<char>& a = active[static_cast<size_t>(t) % active.size()];
      EXPECT_EQ(mem.step(1e-2f, &a), disk.step(1e-2f, &a));
      for (float& x : g) x = 0.9f * x + 0.01f * rng.normal();
    }
    EXPECT_EQ(0, std::memcmp(pm.data(), pd.data(), n * sizeof(float))) << optim_state_name(st);
    for (AdamW::Section sec : {AdamW::kState, AdamW::kCodes}) {
      ASSERT_EQ(mem.section_bytes(sec), disk.section_bytes(sec));
      std::vector<uint8_t> a(mem.section_bytes(sec)), b(a.size());
      mem.read_section(sec, 0, a.size(), a.data());
      disk.read_section(sec, 0, b.size(), b.data());
      EXPECT_EQ(a, b) << optim_state_name(st) << " section " << int(sec);
      // A section written back reads the same (what a resumed checkpoint does).
      disk.write_section(sec, 0, a.size(), a.data());
    }
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir));  // the scratch files were unlinked
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace edgellm
