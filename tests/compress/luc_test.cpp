// Layer-wise unified compression end to end: calibration windows, the sensitivity profile (on
// random models with a known answer), the per-layer allocation priced exactly, and calibrated
// layer-by-layer compression of stories260K (CLI and library) reloading to the same perplexity.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <numeric>

#include "compress/compress_linear.h"
#include "compress/compress_model.h"
#include "compress/layer_allocation.h"
#include "compress/policy.h"
#include "eval/calibrated_compress.h"
#include "eval/calibration.h"
#include "eval/model_files.h"
#include "eval/perplexity.h"
#include "eval/sensitivity.h"
#include "io/packed_tensors.h"
#include "io/tensor_walk.h"
#include "model/forward.h"
#include "test_util.h"
#include "util/error.h"
#include "util/mapped_file.h"
#include "util/rng.h"

namespace edgellm {
namespace {

ModelConfig small_config() {
  ModelConfig c;
  c.dim = 32;
  c.hidden_dim = 48;
  c.n_layers = 4;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 8;
  c.vocab_size = 40;
  c.max_seq_len = 32;
  c.norm_eps = 1e-5f;
  c.layers.resize(c.n_layers);
  return c;
}

// Random f32 model; the linears of layer `loud` are multiplied by `gain`.
std::unique_ptr<Model> random_model(const ModelConfig& c, uint64_t seed, int loud = -1,
                                    float gain = 1.f) {
  Checkpoint ck;
  ck.config = c;
  ck.path = "random";
  Rng r(seed);
  for (const TensorSpec& s : model_tensor_specs(c)) {
    Tensor t = make_owned_tensor(s.name, DType::F32, s.shape);
    auto* p = reinterpret_cast<float*>(const_cast<uint8_t*>(t.data));
    const bool norm = s.role == TensorRole::Norm;
    const float g = s.role == TensorRole::Linear && s.layer == loud ? gain : 1.f;
    for (int64_t i = 0; i < t.numel(); ++i)
      p[i] = g * static_cast<float>(norm ? 1.0 + 0.1 * r.normal() : 0.3 * r.normal());
    ck.tensors.add(std::move(t));
  }
  return std::make_unique<Model>(std::move(ck));
}

std::vector<std::vector<int32_t>> random_windows(const ModelConfig& c, int n, int T,
                                                 uint64_t seed) {
  Rng r(seed);
  std::vector<std::vector<int32_t>> w(n);
  for (auto& s : w)
    for (int i = 0; i < T; ++i) s.push_back(static_cast<int32_t>(r.next() % c.vocab_size));
  return w;
}

TEST(Calibration, EvenStartsFollowTheFormula) {
  // floor(i·(n − T)/(N − 1)) by hand: n = 1000, T = 100, N = 5 -> step 225.
  EXPECT_EQ(calib_window_starts(1000, 5, 100), (std::vector<int64_t>{0, 225, 450, 675, 900}));
  // Non-integer steps floor: n − T = 10, N = 4 -> 0, 10/3, 20/3, 10 = 0, 3, 6, 10.
  EXPECT_EQ(calib_window_starts(30, 4, 20), (std::vector<int64_t>{0, 3, 6, 10}));
  EXPECT_EQ(calib_window_starts(50, 1, 20), (std::vector<int64_t>{0}));
  EXPECT_EQ(calib_window_starts(20, 3, 20), (std::vector<int64_t>{0, 0, 0}));
  EXPECT_THROW(calib_window_starts(19, 3, 20), Error);
  EXPECT_THROW(calib_window_starts(100, 0, 20), Error);
}

TEST(Calibration, RandomStartsAreSeededAndInRange) {
  const auto a = calib_window_starts_random(1000, 200, 100, 7);
  const auto b = calib_window_starts_random(1000, 200, 100, 7);
  const auto c = calib_window_starts_random(1000, 200, 100, 8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  int64_t lo = 1 << 30, hi = -1;
  for (int64_t s : a) lo = std::min(lo, s), hi = std::max(hi, s);
  EXPECT_GE(lo, 0);
  EXPECT_LE(hi, 900);
  EXPECT_LT(lo, 100);  // 200 uniform draws over 901 values cover both ends
  EXPECT_GT(hi, 800);
}

TEST(Calibration, TextWindowsAreTheTokensAtTheStarts) {
  EDGELLM_REQUIRE_DATA("models/stories260K/stories260K.bin");
  auto m = Model::load(testing::stories260k_path());
  auto tok = load_tokenizer_for(*m, testing::data_path("models/stories260K/tok512.bin"));
  const std::string dir = testing::temp_dir("calib");
  const std::string text = dir + "/t.txt";
  write_file_atomic(
      text, read_file(testing::data_path("text/tinystories/tinystories_val.txt")).substr(0, 4000));
  CalibOptions o;
  o.source = text;
  o.windows = 6;
  o.len = 64;
  const Calibration cal = load_calibration(*m, tok.get(), o);
  const std::vector<int32_t> ids = tok->encode(read_file(text));  // no BOS
  const auto starts = calib_window_starts(static_cast<int64_t>(ids.size()), 6, 64);
  ASSERT_EQ(cal.windows.size(), 6u);
  for (size_t i = 0; i < 6; ++i)
    EXPECT_EQ(cal.windows[i],
              std::vector<int32_t>(ids.begin() + starts[i], ids.begin() + starts[i] + 64));
  EXPECT_NE(cal.windows[0][0], tok->bos_id());
  EXPECT_EQ(cal.windows[5].back(), ids.back());  // the last window closes the text
  std::filesystem::remove_all(dir);
}

// Sensitivity falls with bits and rises with sparsity; per-linear errors add up to about the
// whole layer's in the small-error regime (independent errors: cross terms average out).
TEST(Profile, MonotoneAndPerLinearAddsUp) {
  const ModelConfig c = small_config();
  auto m = random_model(c, 11);
  const auto w = random_windows(c, 4, 24, 5);
  for (Pruner pr : {Pruner::Magnitude, Pruner::SparseGpt}) {
    ProfileOptions o;
    o.bits = {3, 4, 6, 8};
    o.sparsity = {0.1, 0.3, 0.5, 0.7};
    o.pruner = pr;
    const SensitivityProfile p = profile_sensitivity(*m, w, o);
    ASSERT_EQ(p.n_layers(), c.n_layers);
    for (int l = 0; l < c.n_layers; ++l) {
      const LayerSensitivity& L = p.layers[l];
      for (size_t k = 1; k < L.quant.size(); ++k) EXPECT_LT(L.quant[k], L.quant[k - 1]) << l;
      for (size_t k = 1; k < L.prune.size(); ++k) EXPECT_GT(L.prune[k], L.prune[k - 1]) << l;
      EXPECT_GT(L.quant.back(), 0);
      double sum8 = 0;
      for (const auto& lin : L.linears) {
        ASSERT_EQ(lin.quant.size(), 4u);
        EXPECT_LE(lin.quant[3], L.quant[3] * 1.5);  // one linear alone errs less than all
        sum8 += lin.quant[3];
      }
      EXPECT_GT(sum8 / L.quant[3], 0.6) << l;
      EXPECT_LT(sum8 / L.quant[3], 1.6) << l;
    }
    // The JSON round trip keeps every value.
    const SensitivityProfile q = SensitivityProfile::from_json(p.to_json(), "test");
    EXPECT_EQ(q.layers[2].quant, p.layers[2].quant);
    EXPECT_EQ(q.layers[1].linears[6].prune, p.layers[1].linears[6].prune);
  }
}

// A layer whose linears are 3x larger (its output change under compression scales with them;
// the next layer's input is renormalised) must rank first at every bit-width and sparsity.
TEST(Profile, RanksAConstructedSensitiveLayerFirst) {
  const ModelConfig c = small_config();
  auto m = random_model(c, 12, /*loud=*/2, /*gain=*/3.f);
  ProfileOptions o;
  o.bits = {3, 5};
  o.sparsity = {0.3, 0.6};
  o.pruner = Pruner::Magnitude;
  o.per_linear = false;
  const SensitivityProfile p = profile_sensitivity(*m, random_windows(c, 3, 20, 6), o);
  for (size_t k = 0; k < 2; ++k)
    for (int l = 0; l < c.n_layers; ++l) {
      if (l == 2) continue;
      EXPECT_GT(p.layers[2].quant[k], 3 * p.layers[l].quant[k]) << l;
      EXPECT_GT(p.layers[2].prune[k], 3 * p.layers[l].prune[k]) << l;
    }
  // luc: the loud layer gets the extra bit and the least sparsity.
  LayerAllocOptions ao;
  ao.B = 3;
  ao.P = 0.5;
  ao.policy = "luc";
  const LayerAllocation a = allocate_layers(c, &p, ao);
  EXPECT_EQ(a.layer_choice(2)->bits, 4);
  for (int l = 0; l < c.n_layers; ++l)
    if (l != 2) {
      EXPECT_LT(a.layer_choice(2)->sparsity, a.layer_choice(l)->sparsity);
    }
}

// Independent truth: the profile's whole-layer 4-bit number recomputed by hand from the dense
// model (layer 1 alone, compressed weights substituted) on the dense hidden states.
TEST(Profile, EqualsADirectComputation) {
  const ModelConfig c = small_config();
  auto m = random_model(c, 13);
  const auto w = random_windows(c, 2, 16, 9);
  ProfileOptions o;
  o.bits = {4};
  o.sparsity = {};
  o.per_linear = false;
  const SensitivityProfile p = profile_sensitivity(*m, w, o);
  InferenceState st(*m, 16);
  double se = 0, n = 0;
  std::array<std::vector<float>, kLinears> wh;
  LayerWeights lw = m->layer(1);
  std::array<WeightView*, kLinears> views{&lw.wq,     &lw.wk,   &lw.wv,    &lw.wo,
                                          &lw.w_gate, &lw.w_up, &lw.w_down};
  for (int t = 0; t < kLinears; ++t) {
    const WeightView& v = m->layer(1).linear(static_cast<LinearId>(t));
    CompressSpec s;
    s.bits = 4;
    wh[t] = compress_linear(reinterpret_cast<const float*>(v.data), v.rows, v.cols, s, nullptr)
                .q.dequantize();
    *views[t] = WeightView::f32(wh[t].data(), v.rows, v.cols);
  }
  for (const auto& win : w) {
    std::vector<float> x(16 * c.dim), y;
    st.embed(win.data(), 16, x.data());
    st.layer_forward(0, x.data(), 16, 0);
    y = x;
    st.layer_forward(1, x.data(), 16, 0);
    st.layer_forward(1, y.data(), 16, 0, &lw);
    for (size_t i = 0; i < x.size(); ++i) se += double(x[i] - y[i]) * double(x[i] - y[i]);
    n += double(x.size());
  }
  EXPECT_NEAR(p.layers[1].quant[0], se / n, 1e-6 * (se / n));
}

TEST(LayerAllocation, PricesExactlyAndBudgetStaysWithinTarget) {
  const ModelConfig c = small_config();
  auto m = random_model(c, 14, 1, 2.f);
  ProfileOptions o;
  o.bits = {3, 4, 5, 8};
  o.sparsity = {0.2, 0.5, 0.7};
  o.pruner = Pruner::Magnitude;
  o.per_linear = false;
  const SensitivityProfile p = profile_sensitivity(*m, random_windows(c, 2, 16, 3), o);
  LayerAllocOptions ao;
  ao.B = 4;
  ao.P = 0.5;
  ao.base.pruner = Pruner::Magnitude;
  for (const char* pol : {"luc", "random", "uniform", "official"}) {
    ao.policy = pol;
    const LayerAllocation a = allocate_layers(c, &p, ao);
    double mean_p = 0;
    for (int l = 0; l < c.n_layers; ++l) mean_p += a.layer_choice(l)->sparsity / c.n_layers;
    EXPECT_NEAR(mean_p, 0.5, 1e-9) << pol;
    // Predicted bytes = the bytes compress_checkpoint actually stores.
    const Checkpoint ck = compress_checkpoint(m->checkpoint(), allocation_plan(a, ao.base));
    const int64_t pred =
        std::accumulate(a.predicted_bytes.begin(), a.predicted_bytes.end(), int64_t{0});
    EXPECT_EQ(pred, storage_summary(ck)["linear_bytes"].get<int64_t>()) << pol;
  }
  ao.policy = "luc";
  const LayerAllocation luc = allocate_layers(c, &p, ao);
  ao.policy = "budget";
  const LayerAllocation b = allocate_layers(c, &p, ao);  // target = luc's bytes
  const auto sum = [](const auto& v) { return std::accumulate(v.begin(), v.end(), 0.0); };
  EXPECT_LE(sum(b.predicted_bytes), sum(luc.predicted_bytes));
  EXPECT_LE(sum(b.predicted_sensitivity), sum(luc.predicted_sensitivity) * (1 + 1e-12));
  ao.target_bpw = 3.0;
  const LayerAllocation b3 = allocate_layers(c, &p, ao);
  EXPECT_LE(sum(b3.predicted_bytes), 3.0 * double(decoder_linear_params(c)) / 8.0);
  // Relative sensitivity: every value divided by its layer's dense output mean square.
  const SensitivityProfile r = relative_profile(p);
  for (int l = 0; l < c.n_layers; ++l) {
    ASSERT_GT(p.layers[l].output_ms, 0);
    for (size_t k = 0; k < p.bits.size(); ++k)
      EXPECT_DOUBLE_EQ(r.layers[l].quant[k], p.layers[l].quant[k] / p.layers[l].output_ms);
    for (size_t k = 0; k < p.sparsity.size(); ++k)
      EXPECT_DOUBLE_EQ(r.layers[l].prune[k], p.layers[l].prune[k] / p.layers[l].output_ms);
  }
  ao.policy = "luc";
  ao.target_bpw = 0;
  ao.relative = true;
  const LayerAllocation lr = allocate_layers(c, &p, ao);
  const std::vector<int> want_bits = luc_bits(r.s_quant(4), 4);
  const std::vector<double> want_p = luc_sparsity(r.s_prune(), 0.5, 0.0, 0.95);
  for (int l = 0; l < c.n_layers; ++l) {
    EXPECT_EQ(lr.layer_choice(l)->bits, want_bits[l]) << l;
    EXPECT_EQ(lr.layer_choice(l)->sparsity, want_p[l]) << l;
  }
}

// Calibrated (GPTQ + SparseGPT, luc) stories260K through the CLI: the directory reloads and its
// perplexity equals the library's compression of the same model with the same windows and plan,
// evaluated before anything is written.
TEST(CalibratedCompress, Stories260KReloadsToTheSamePerplexity) {
  EDGELLM_REQUIRE_DATA("models/stories260K/stories260K.bin");
  EDGELLM_REQUIRE_DATA("text/tinystories/tinystories_val.txt");
  const std::string bin = testing::stories260k_path();
  const std::string val = testing::data_path("text/tinystories/tinystories_val.txt");
  const std::string dir = testing::temp_dir("luc");
  const std::string text = dir + "/calib.txt";
  write_file_atomic(text, read_file(val).substr(20000, 30000));
  const std::string out = dir + "/s4";
  const std::string cmd = testing::cli_command() + " compress --threads 1 --model " + bin +
                          " --calib " + text +
                          " --calib-windows 8 --calib-len 128 --quantizer gptq --pruner "
                          "sparsegpt --bits 4 --sparsity 0.3 --policy luc --out " +
                          out + " > " + dir + "/log.txt 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_file(dir + "/log.txt");

  auto m = Model::load(bin);
  auto tok = load_tokenizer_for(*m, testing::data_path("models/stories260K/tok512.bin"));
  CalibOptions co;
  co.source = text;
  co.windows = 8;
  co.len = 128;
  const Calibration cal = load_calibration(*m, tok.get(), co);
  ProfileOptions po;
  po.bits = {3, 4, 5, 8};
  po.sparsity = {0.1, 0.3, 0.5, 0.7};
  po.per_linear = false;
  const SensitivityProfile p = profile_sensitivity(*m, cal.windows, po);
  LayerAllocOptions ao;
  ao.policy = "luc";
  ao.B = 4;
  ao.P = 0.3;
  ao.base.quantizer = Quantizer::Gptq;
  ao.base.pruner = Pruner::SparseGpt;
  const LayerAllocation a = allocate_layers(m->config(), &p, ao);
  Checkpoint ck = compress_model_calibrated(*m, cal.windows, allocation_plan(a, ao.base));
  const std::vector<int32_t> ids = ppl_tokens(*tok, read_file(val).substr(0, 12000), 1024);
  PplOptions o;
  o.ctx = 256;
  const double fresh = perplexity(Model(std::move(ck)), ids, o).ppl;
  const double reloaded = perplexity(*Model::load(out), ids, o).ppl;
  EXPECT_EQ(fresh, reloaded);
  const double dense = perplexity(*m, ids, o).ppl;
  EXPECT_GT(reloaded, dense);      // compression costs something
  EXPECT_LT(reloaded, 3 * dense);  // GPTQ + SparseGPT at 4.x bits / 30% keeps the model usable
  // The record carries the policy and its sensitivities.
  const auto cfg = load_checkpoint(out).compression;
  EXPECT_EQ(cfg["policy"]["name"], "luc");
  EXPECT_EQ(cfg["sensitivity"]["layers"].size(), 5u);
  EXPECT_TRUE(cfg["sequential"].get<bool>());
  std::filesystem::remove_all(dir);
}

// `compress --head` with any allocation: the untied head is packed dense by RTN at the base's
// bits, group and scheme (and equals RTN of the source head), whatever the decoder linears get
// (here GPTQ + SparseGPT at 50 %, statistics per layer, which the head has none of).
TEST(CalibratedCompress, HeadJoinsAnyPlanDenseByRtn) {
  const ModelConfig c = small_config();
  auto m = random_model(c, 15);
  CompressSpec base;
  base.bits = 4;
  base.group = 0;
  base.quantizer = Quantizer::Gptq;
  base.pruner = Pruner::SparseGpt;
  base.sparsity.p = 0.5;
  const CompressSpec h = head_spec(base);
  EXPECT_EQ(h.quantizer, Quantizer::Rtn);
  EXPECT_EQ(h.pruner, Pruner::None);
  EXPECT_EQ(h.sparsity.p, 0.0);
  const Checkpoint ck =
      compress_model_calibrated(*m, random_windows(c, 4, 16, 3), with_head(uniform_plan(base), h));
  const Tensor& head = ck.tensors.get("lm_head.weight", "ck");
  ASSERT_EQ(head.dtype, DType::Packed);
  EXPECT_EQ(head.packed->format().name(), "b4-sym-row");
  EXPECT_EQ(head.packed->kept(), head.numel());
  const Tensor& q = ck.tensors.get("model.layers.1.self_attn.q_proj.weight", "ck");
  ASSERT_EQ(q.dtype, DType::Packed);
  EXPECT_LT(q.packed->kept(), q.numel() * 6 / 10);  // the linears keep their own plan
  // The head's bytes are RTN's of the source head.
  const Tensor& src = m->checkpoint().tensors.get("lm_head.weight", "src");
  const int64_t rows = src.shape[0], cols = src.shape[1];
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) decode_tensor_row(src, r, w.data() + r * cols);
  const CompressedLinear rtn = compress_linear(w.data(), rows, cols, h, nullptr);
  const PackedParts& parts = head.packed->parts();
  ASSERT_EQ(parts.codes.size, rtn.packed.codes.size());
  EXPECT_TRUE(std::equal(rtn.packed.codes.begin(), rtn.packed.codes.end(), parts.codes.data));
  ASSERT_EQ(parts.scales.size, rtn.packed.scales.size() * 2);
  EXPECT_EQ(std::memcmp(rtn.packed.scales.data(), parts.scales.data, parts.scales.size), 0);
}

// `edgellm profile` writes a sens.json that reads back (schema of docs/compression.md) and an
// SVG; data-free calibration works without a text file.
TEST(ProfileCli, WritesSensJsonAndPlot) {
  EDGELLM_REQUIRE_DATA("models/stories260K/stories260K.bin");
  const std::string dir = testing::temp_dir("profile");
  const std::string cmd = testing::cli_command() + " profile --threads 1 --model " +
                          testing::stories260k_path() +
                          " --calib data-free --calib-windows 2 --calib-len 32 --bits 3,8 "
                          "--sparsity 0.2,0.6 --pruner wanda --out " +
                          dir + "/sens.json --plot " + dir + "/sens.svg > " + dir + "/log.txt 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_file(dir + "/log.txt");
  const auto j = nlohmann::json::parse(read_file(dir + "/sens.json"));
  const SensitivityProfile p = SensitivityProfile::from_json(j, "sens.json");
  EXPECT_EQ(p.n_layers(), 5);
  EXPECT_EQ(p.bits, (std::vector<int>{3, 8}));
  EXPECT_EQ(p.pruner, "wanda");
  EXPECT_TRUE(p.per_linear);
  EXPECT_EQ(j["calibration"]["source"], "data-free");
  EXPECT_EQ(j["s_prune"].size(), 5u);
  for (int l = 0; l < 5; ++l) {
    EXPECT_GT(p.layers[l].quant[0], p.layers[l].quant[1]);
    EXPECT_LT(p.layers[l].prune[0], p.layers[l].prune[1]);
    EXPECT_EQ(p.layers[l].linears[0].quant.size(), 2u);
  }
  const std::string svg = read_file(dir + "/sens.svg");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("3-bit"), std::string::npos);
  EXPECT_NE(svg.find("60% sparse"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace edgellm
