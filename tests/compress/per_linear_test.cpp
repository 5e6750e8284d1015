// Per-linear allocation: the budget knapsack over the seven linears of every layer (their own
// measured curves and exact bytes) and the file policy's per-linear entries, carried through
// compress -> save -> load -> info.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include "compress/layer_allocation.h"
#include "compress/prune.h"
#include "eval/model_files.h"
#include "eval/sensitivity.h"
#include "io/packed_tensors.h"
#include "io/tensor_walk.h"
#include "model/model.h"
#include "test_util.h"
#include "util/error.h"
#include "util/mapped_file.h"
#include "util/rng.h"

namespace edgellm {
namespace {

ModelConfig small_config(int layers) {
  ModelConfig c;
  c.dim = 32;
  c.hidden_dim = 48;
  c.n_layers = layers;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 8;
  c.vocab_size = 40;
  c.max_seq_len = 32;
  c.layers.resize(layers);
  return c;
}

// A profile made up by hand: linear t of layer l has quantization error k·4^(−b) and pruning
// error k·p², k = gain(l, t); the layer curves are the sums of its linears' (as if additive).
SensitivityProfile constructed_profile(const ModelConfig& c,
                                       const std::function<double(int, int)>& gain) {
  SensitivityProfile p;
  p.model = "constructed";
  p.bits = {3, 4, 8};
  p.sparsity = {0.3, 0.5};
  p.per_linear = true;
  for (int l = 0; l < c.n_layers; ++l) {
    LayerSensitivity L;
    L.quant.assign(p.bits.size(), 0.0);
    L.prune.assign(p.sparsity.size(), 0.0);
    L.output_ms = 1;
    for (int t = 0; t < kLinears; ++t) {
      LinearSensitivity& s = L.linears[t];
      s.rows = c.linear_out(static_cast<LinearId>(t));
      s.cols = c.linear_in(static_cast<LinearId>(t));
      const double k = gain(l, t);
      for (size_t i = 0; i < p.bits.size(); ++i) {
        s.quant.push_back(k * std::pow(4.0, -p.bits[i]));
        L.quant[i] += s.quant.back();
      }
      for (size_t i = 0; i < p.sparsity.size(); ++i) {
        s.prune.push_back(k * p.sparsity[i] * p.sparsity[i]);
        L.prune[i] += s.prune.back();
      }
    }
    p.layers.push_back(L);
  }
  return p;
}

// stdout of a shell command (stderr dropped).
std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* f = popen((cmd + " 2>/dev/null").c_str(), "r");
  if (!f) return out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
  pclose(f);
  return out;
}

double sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }
int64_t sum(const std::vector<int64_t>& v) {
  return std::accumulate(v.begin(), v.end(), int64_t{0});
}

LayerAllocOptions budget_options(const std::string& granularity, double target_bpw) {
  LayerAllocOptions o;
  o.policy = "budget";
  o.granularity = granularity;
  o.B = 4;
  o.P = 0.3;
  o.target_bpw = target_bpw;
  o.base.pruner = Pruner::Magnitude;
  return o;
}

// A down_proj 100× more sensitive than its layer's other linears: one choice per layer has to
// treat them alike, one per linear gives it the bits. Both stay within the target; per linear
// reaches a smaller summed (per-linear) sensitivity at every target, clearly so here.
TEST(PerLinearBudget, ConstructedCaseBeatsPerLayer) {
  const ModelConfig c = small_config(3);
  const SensitivityProfile p = constructed_profile(c, [](int l, int t) {
    return (t == static_cast<int>(LinearId::Down) ? 100.0 : 1.0) * (1 + l);
  });
  const double params = double(decoder_linear_params(c));
  for (double bpw : {3.0, 3.5, 4.5, 6.0}) {
    const LayerAllocation layer = allocate_layers(c, &p, budget_options("layer", bpw));
    const LayerAllocation linear = allocate_layers(c, &p, budget_options("linear", bpw));
    EXPECT_EQ(linear.granularity, "linear");
    EXPECT_TRUE(layer.budget_exact && linear.budget_exact);
    EXPECT_LE(double(sum(layer.predicted_bytes)), bpw * params / 8) << bpw;
    EXPECT_LE(double(sum(linear.predicted_bytes)), bpw * params / 8) << bpw;
    EXPECT_LE(sum(linear.predicted_linear_sensitivity),
              sum(layer.predicted_linear_sensitivity) * (1 + 1e-12))
        << bpw;
    if (bpw == 4.5) {  // the sensitive linear gets more bits than the rest of its layer
      EXPECT_LT(sum(linear.predicted_linear_sensitivity),
                0.8 * sum(layer.predicted_linear_sensitivity));
      for (int l = 0; l < c.n_layers; ++l) {
        EXPECT_FALSE(linear.layer_choice(l).has_value()) << l;
        EXPECT_GT(linear.linears[l][static_cast<int>(LinearId::Down)].bits,
                  linear.linears[l][static_cast<int>(LinearId::Q)].bits)
            << l;
      }
    }
  }
}

// Independent truth for the knapsack's answer: every combination of one layer's seven linears
// over the candidate set (bits {3, 4, 8, 16} × sparsity {0, 0.3, 0.5}, minus (16, 0)), brute
// force.
TEST(PerLinearBudget, EqualsBruteForceOnOneLayer) {
  const ModelConfig c = small_config(1);
  Rng rng(5);
  std::array<double, kLinears> k;
  for (double& x : k) x = std::exp(3 * rng.uniform());
  const SensitivityProfile p = constructed_profile(c, [&](int, int t) { return k[t]; });
  struct Cand {
    int bits;
    double p;
  };
  std::vector<Cand> cands;
  for (int b : {3, 4, 8, 16})
    for (double s : {0.0, 0.3, 0.5})
      if (b < 16 || s > 0) cands.push_back({b, s});
  CompressSpec base;
  base.pruner = Pruner::Magnitude;
  std::array<std::vector<int64_t>, kLinears> bytes;
  std::array<std::vector<double>, kLinears> sens;
  for (int t = 0; t < kLinears; ++t)
    for (const Cand& x : cands) {
      bytes[t].push_back(linear_bytes(c.linear_out(static_cast<LinearId>(t)),
                                      c.linear_in(static_cast<LinearId>(t)),
                                      layer_spec(base, x.bits, x.p)));
      // The constructed curve by hand (p² at the profiled levels; 4^(−b); 0 at 16 bits).
      sens[t].push_back(k[t] * ((x.bits < 16 ? std::pow(4.0, -x.bits) : 0.0) + x.p * x.p));
    }
  const size_t n = cands.size();
  const std::vector<double> bpws{3.1, 3.6, 4.4, 5.5};
  std::vector<int64_t> targets;
  for (double bpw : bpws)
    targets.push_back(static_cast<int64_t>(std::floor(bpw * double(decoder_linear_params(c)) / 8)));
  std::vector<double> best(bpws.size(), INFINITY);
  const size_t total = static_cast<size_t>(std::pow(n, kLinears));
  for (size_t combo = 0; combo < total; ++combo) {
    size_t r = combo;
    int64_t b = 0;
    double s = 0;
    for (int t = 0; t < kLinears; ++t, r /= n) {
      b += bytes[t][r % n];
      s += sens[t][r % n];
    }
    for (size_t i = 0; i < bpws.size(); ++i)
      if (b <= targets[i]) best[i] = std::min(best[i], s);
  }
  for (size_t i = 0; i < bpws.size(); ++i) {
    const LayerAllocation a = allocate_layers(c, &p, budget_options("linear", bpws[i]));
    EXPECT_LE(sum(a.predicted_bytes), targets[i]) << bpws[i];
    EXPECT_NEAR(sum(a.predicted_linear_sensitivity), best[i], 1e-12 * best[i]) << bpws[i];
  }
}

// On a random model: the per-linear allocation's predicted bytes are the bytes compress stores,
// and every linear is stored with the bits and sparsity it was given.
TEST(PerLinearBudget, PredictedBytesAreStoredBytes) {
  const ModelConfig c = small_config(2);
  Checkpoint ck;
  ck.config = c;
  ck.path = "random";
  Rng r(3);
  for (const TensorSpec& s : model_tensor_specs(c)) {
    Tensor t = make_owned_tensor(s.name, DType::F32, s.shape);
    auto* v = reinterpret_cast<float*>(const_cast<uint8_t*>(t.data));
    for (int64_t i = 0; i < t.numel(); ++i)
      v[i] = s.role == TensorRole::Norm ? 1.f : static_cast<float>(0.3 * r.normal());
    ck.tensors.add(std::move(t));
  }
  const SensitivityProfile p =
      constructed_profile(c, [](int l, int t) { return 1.0 + 7 * ((3 * l + t) % 4); });
  for (double bpw : {3.0, 4.5}) {
    const LayerAllocOptions o = budget_options("linear", bpw);
    const LayerAllocation a = allocate_layers(c, &p, o);
    const Checkpoint out = compress_checkpoint(ck, allocation_plan(a, o.base));
    EXPECT_EQ(sum(a.predicted_bytes), storage_summary(out)["linear_bytes"].get<int64_t>()) << bpw;
    for (int l = 0; l < c.n_layers; ++l)
      for (int t = 0; t < kLinears; ++t) {
        const LinearChoice& x = a.linears[l][t];
        const LinearFormat& f = out.config.layers[l].linear[t];
        EXPECT_EQ(f.bits, x.bits == 16 ? 0 : x.bits) << l << " " << t;
        const int64_t cols = c.linear_in(static_cast<LinearId>(t));
        EXPECT_FLOAT_EQ(f.sparsity, float(double(pruned_per_row(x.sparsity, cols)) / double(cols)))
            << l << " " << t;
      }
  }
}

// stories260K's measured curves (per-linear profile on real text): at the same target the
// per-linear budget's summed per-linear sensitivity is never above the per-layer budget's
// (its choices include every per-layer allocation), and both stay within the target.
TEST(PerLinearBudget, Stories260KNotWorseThanPerLayer) {
  EDGELLM_REQUIRE_DATA("models/stories260K/stories260K.bin");
  EDGELLM_REQUIRE_DATA("text/tinystories/tinystories_val.txt");
  auto m = Model::load(testing::stories260k_path());
  auto tok = load_tokenizer_for(*m, testing::data_path("models/stories260K/tok512.bin"));
  const std::vector<int32_t> ids = tok->encode(
      read_file(testing::data_path("text/tinystories/tinystories_val.txt")).substr(0, 6000));
  ASSERT_GE(ids.size(), 4u * 96);
  std::vector<std::vector<int32_t>> windows;
  for (int i = 0; i < 4; ++i) windows.emplace_back(ids.begin() + 96 * i, ids.begin() + 96 * i + 96);
  ProfileOptions po;
  po.bits = {3, 4, 5, 8};
  po.sparsity = {0.3, 0.5, 0.7};
  po.pruner = Pruner::Magnitude;
  po.per_linear = true;
  const SensitivityProfile p = profile_sensitivity(*m, windows, po);
  const ModelConfig& c = m->config();
  const double params = double(decoder_linear_params(c));
  for (double p_max : {0.0, 0.95})
    for (double bpw : {0.0, 3.5, 4.5}) {  // 0: luc's own size
      LayerAllocOptions lo = budget_options("layer", bpw), no = budget_options("linear", bpw);
      lo.p_max = no.p_max = p_max;
      lo.P = no.P = p_max > 0 ? 0.3 : 0.0;
      const LayerAllocation layer = allocate_layers(c, &p, lo);
      const LayerAllocation linear = allocate_layers(c, &p, no);
      ASSERT_TRUE(linear.budget_exact);
      EXPECT_EQ(layer.target_bytes, linear.target_bytes);
      EXPECT_LE(sum(linear.predicted_bytes), linear.target_bytes);
      if (bpw > 0) {
        EXPECT_LE(double(linear.target_bytes), bpw * params / 8);
      }
      EXPECT_LE(sum(linear.predicted_linear_sensitivity),
                sum(layer.predicted_linear_sensitivity) * (1 + 1e-12))
          << bpw << " " << p_max;
      if (p_max == 0) {
        for (const LayerChoice& lc : linear.linears)
          for (const LinearChoice& x : lc) EXPECT_EQ(x.sparsity, 0.0);
      }
    }
}

// A target in bytes is kept to the byte: the same answer as the equivalent --target-bpw.
TEST(PerLinearBudget, TargetInBytes) {
  const ModelConfig c = small_config(2);
  const SensitivityProfile p =
      constructed_profile(c, [](int l, int t) { return 1.0 + 5 * ((l + 2 * t) % 3); });
  LayerAllocOptions o = budget_options("linear", 0);
  o.target_bytes = 9001;
  const LayerAllocation a = allocate_layers(c, &p, o);
  EXPECT_EQ(a.target_bytes, 9001);
  EXPECT_LE(sum(a.predicted_bytes), 9001);
  const LayerAllocation b = allocate_layers(
      c, &p, budget_options("linear", 9001.5 * 8 / double(decoder_linear_params(c))));
  EXPECT_EQ(b.target_bytes, 9001);
  EXPECT_EQ(sum(b.predicted_linear_sensitivity), sum(a.predicted_linear_sensitivity));
}

TEST(PerLinearBudget, NeedsPerLinearCurves) {
  const ModelConfig c = small_config(2);
  SensitivityProfile p = constructed_profile(c, [](int, int) { return 1.0; });
  p.per_linear = false;
  try {
    allocate_layers(c, &p, budget_options("linear", 4));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("per-linear"), std::string::npos) << e.what();
  }
  LayerAllocOptions o = budget_options("linear", 4);
  o.policy = "luc";
  EXPECT_THROW(allocate_layers(c, &p, o), Error);
  // A sens.json claiming per-linear curves of the wrong length fails naming the linear.
  p.per_linear = true;
  nlohmann::json j = p.to_json();
  j["layers"][1]["linears"]["up_proj"]["quant"] = {1.0};
  try {
    SensitivityProfile::from_json(j, "sens.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string w = e.what();
    EXPECT_NE(w.find("sens.json"), std::string::npos) << w;
    EXPECT_NE(w.find("layer 1 up_proj"), std::string::npos) << w;
  }
}

// The file policy per linear through the CLI: compress stories260K with per-layer entries,
// per-layer "linears" overrides and top-level module names; load and `info` show exactly those
// bits and sparsities per linear.
TEST(FilePolicy, PerLinearRoundTripsThroughCompressLoadInfo) {
  EDGELLM_REQUIRE_DATA("models/stories260K/stories260K.bin");
  const std::string dir = testing::temp_dir("perlinear_file");
  const std::string bin = testing::stories260k_path();
  write_file_atomic(dir + "/alloc.json", R"({
    "layers": [
      {"bits": 4},
      {"bits": 4, "sparsity": 0.5,
       "linears": {"down_proj": {"bits": 8, "sparsity": 0}, "q_proj": {"bits": 3}}},
      {"bits": 16, "sparsity": 0.3},
      {"bits": 5},
      {"bits": 6, "sparsity": 0.3}
    ],
    "linears": {"layers.3.mlp.gate_proj": {"bits": 2, "sparsity": 0.5},
                "model.layers.4.self_attn.v_proj.weight": {"bits": 8}}
  })");
  const std::string out = dir + "/m";
  const std::string cmd = testing::cli_command() + " compress --threads 1 --model " + bin +
                          " --policy file --allocation " + dir + "/alloc.json --out " + out +
                          " > " + dir + "/log.txt 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_file(dir + "/log.txt");
  // The expected (bits, sparsity) of every linear, written out by hand from the file.
  std::vector<LayerChoice> want(5);
  want[0].fill({4, 0});
  want[1].fill({4, 0.5});
  want[1][static_cast<int>(LinearId::Down)] = {8, 0};
  want[1][static_cast<int>(LinearId::Q)] = {3, 0.5};
  want[2].fill({16, 0.3});
  want[3].fill({5, 0});
  want[3][static_cast<int>(LinearId::Gate)] = {2, 0.5};
  want[4].fill({6, 0.3});
  want[4][static_cast<int>(LinearId::V)] = {8, 0.3};
  const Checkpoint ck = load_checkpoint(out);
  const nlohmann::json info =
      nlohmann::json::parse(run_capture(testing::cli_command() + " info --json --model " + out));
  const nlohmann::json& rec = info["config"]["edgellm"]["layers"];
  for (int l = 0; l < 5; ++l)
    for (int t = 0; t < kLinears; ++t) {
      const LinearChoice& x = want[l][t];
      const int64_t cols = ck.config.linear_in(static_cast<LinearId>(t));
      const double sp = double(pruned_per_row(x.sparsity, cols)) / double(cols);
      const LinearFormat& f = ck.config.layers[l].linear[t];
      EXPECT_EQ(f.bits, x.bits == 16 ? 0 : x.bits) << l << " " << t;
      EXPECT_NEAR(f.sparsity, sp, 1e-6) << l << " " << t;
      const nlohmann::json& r = rec[l][linear_name(static_cast<LinearId>(t))];
      EXPECT_EQ(r.value("bits", 0), x.bits == 16 ? 0 : x.bits) << l << " " << t;
      EXPECT_NEAR(r.value("sparsity", 0.0), sp, 1e-6) << l << " " << t;
    }
  // The record keeps the allocation per linear, and the text form of info lists the linears of
  // a layer whose linears differ.
  EXPECT_EQ(ck.compression["policy"]["allocation"]["granularity"], "linear");
  EXPECT_EQ(ck.compression["policy"]["allocation"]["linears"][1]["down_proj"]["bits"], 8);
  const std::string text = run_capture(testing::cli_command() + " info --model " + out);
  EXPECT_NE(text.find("down_proj=8b/sym"), std::string::npos) << text;
  EXPECT_NE(text.find("q_proj=3b/sym/sp0.50"), std::string::npos) << text;
  EXPECT_NE(text.find("gate_proj=2b/sym/sp0.50"), std::string::npos) << text;
  EXPECT_NE(text.find("all=4b/sym"), std::string::npos) << text;  // layer 0: one format
  std::filesystem::remove_all(dir);
}

std::string error_of(const nlohmann::json& file) {
  LayerAllocOptions o;
  o.policy = "file";
  o.file = file;
  o.file_source = "bad_alloc.json";
  try {
    allocate_layers(small_config(5), nullptr, o);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

void expect_names(const std::string& msg, std::initializer_list<const char*> parts) {
  for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << p << " in: " << msg;
}

TEST(FilePolicy, MalformedPerLinearEntriesNameFileKeyAndValue) {
  using J = nlohmann::json;
  expect_names(error_of(J::parse(R"({"linears": {"layers.3.mlp.down_proj": {"bits": 9}}})")),
               {"bad_alloc.json", "layers.3.mlp.down_proj.bits", "= 9"});
  expect_names(
      error_of(J::parse(R"({"linears": {"layers.1.self_attn.q_proj": {"sparsity": 1.5}}})")),
      {"bad_alloc.json", "layers.1.self_attn.q_proj.sparsity", "1.5"});
  expect_names(error_of(J::parse(R"({"linears": {"layers.2.mlp.down_prj": {"bits": 4}}})")),
               {"bad_alloc.json", "layers.2.mlp.down_prj", "no such linear"});
  expect_names(error_of(J::parse(R"({"linears": {"layers.7.mlp.up_proj": {"bits": 4}}})")),
               {"bad_alloc.json", "layers.7.mlp.up_proj", "5-layer"});
  expect_names(error_of(J::parse(R"({"linears": {"layers.0.mlp.up_proj": {"bits": "four"}}})")),
               {"bad_alloc.json", "layers.0.mlp.up_proj.bits", "\"four\""});
  expect_names(error_of(J::parse(R"({"linears": {"layers.0.mlp.up_proj": {"bitz": 4}}})")),
               {"bad_alloc.json", "layers.0.mlp.up_proj.bitz", "unknown key"});
  J layers = J::array();
  for (int l = 0; l < 5; ++l) layers.push_back({{"bits", 4}});
  layers[2]["linears"] = {{"o_proj", {{"bits", 4.5}}}};
  expect_names(error_of({{"layers", layers}}),
               {"bad_alloc.json", "layers[2].linears.o_proj.bits", "4.5"});
  layers[2]["linears"] = {{"x_proj", {{"bits", 4}}}};
  expect_names(error_of({{"layers", layers}}),
               {"bad_alloc.json", "layers[2].linears.x_proj", "unknown linear"});
  layers.erase(4);
  expect_names(error_of({{"layers", layers}}), {"bad_alloc.json", "'layers'", "4 entries"});
  expect_names(error_of(J::parse(R"({"layer": []})")), {"bad_alloc.json", "'layer'"});
}

// The CLI passes the file's own name into those errors.
TEST(FilePolicy, CliErrorNamesTheFile) {
  EDGELLM_REQUIRE_DATA("models/stories260K/stories260K.bin");
  const std::string dir = testing::temp_dir("perlinear_bad");
  write_file_atomic(dir + "/my_alloc.json",
                    R"({"linears": {"layers.3.mlp.down_proj": {"bits": 9}}})");
  const std::string cmd = testing::cli_command() + " compress --threads 1 --model " +
                          testing::stories260k_path() + " --policy file --allocation " + dir +
                          "/my_alloc.json --out " + dir + "/m > " + dir + "/log.txt 2>&1";
  EXPECT_NE(std::system(cmd.c_str()), 0);
  expect_names(read_file(dir + "/log.txt"),
               {"my_alloc.json", "layers.3.mlp.down_proj.bits", "= 9"});
  EXPECT_FALSE(std::filesystem::exists(dir + "/m"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace edgellm
