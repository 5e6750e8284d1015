// Exit heads (model/exit_heads.h): save/load round trip in both head modes, every bad file
// refused with the file, field and value named; forward_exits keeps the stream at each depth and
// its deepest exit reproduces forward().
#include "model/exit_heads.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "model/forward.h"
#include "test_util.h"
#include "util/error.h"
#include "util/mapped_file.h"
#include "util/rng.h"

namespace edgellm {
namespace {

using testing::error_of;

class ExitHeadsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(testing::stories260k_path()))
      GTEST_SKIP() << "stories260K missing";
    m_ = Model::load(testing::stories260k_path());
    dir_ = testing::temp_dir("exit_heads");
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  ExitHeads make(ExitHeadMode hm) const {
    ExitConfig c;
    c.depths = {2, 4, 5};
    c.head_mode = hm;
    c.lora_mode = ExitLoraMode::Cumulative;
    c.window = 2;
    c.schedule = "random";
    ExitHeads h(m_->config(), c);
    h.init_from(*m_);
    Rng r(3);
    for (float& x : h.params()) x += static_cast<float>(0.01 * r.normal());
    return h;
  }
  std::shared_ptr<Model> m_;
  std::string dir_;
};

TEST_F(ExitHeadsTest, RoundTripBothModes) {
  const ModelConfig& c = m_->config();
  for (ExitHeadMode hm : {ExitHeadMode::Shared, ExitHeadMode::Cloned}) {
    const ExitHeads h = make(hm);
    // Shared: a gain per early exit; cloned: gain and V×C head; the depth-L exit owns nothing.
    const size_t per = c.dim + (hm == ExitHeadMode::Cloned ? size_t(c.vocab_size) * c.dim : 0);
    EXPECT_EQ(h.params().size(), 2 * per);
    EXPECT_FALSE(h.own(2));
    EXPECT_EQ(h.weights(2, *m_).norm, m_->final_norm());
    h.save(dir_);
    ASSERT_TRUE(ExitHeads::present(dir_));
    const ExitHeads re = ExitHeads::load(dir_, c);
    EXPECT_EQ(re.params(), h.params());
    EXPECT_EQ(re.config().depths, h.config().depths);
    EXPECT_EQ(re.config().head_mode, hm);
    EXPECT_EQ(re.config().lora_mode, ExitLoraMode::Cumulative);
    EXPECT_EQ(re.config().window, 2);
    EXPECT_EQ(re.config().schedule, "random");
    const std::vector<NamedF32> t = read_safetensors_f32(dir_ + "/exit_heads.safetensors");
    ASSERT_EQ(t.size(), hm == ExitHeadMode::Cloned ? 4u : 2u);
    EXPECT_EQ(t[0].name,
              hm == ExitHeadMode::Cloned ? "exits.0.lm_head.weight" : "exits.0.norm.weight");
  }
}

TEST_F(ExitHeadsTest, BadFilesFailNamingFileFieldAndValue) {
  const ModelConfig& c = m_->config();
  make(ExitHeadMode::Shared).save(dir_);
  const std::string js = dir_ + "/edgellm_exits.json", st = dir_ + "/exit_heads.safetensors";
  const std::string good = read_file(js);
  auto with = [&](const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json j = nlohmann::json::parse(good);
    edit(j);
    std::ofstream(js) << j.dump();
    return error_of([&] { ExitHeads::load(dir_, c); });
  };
  std::string e = with([](nlohmann::json& j) { j["head_mode"] = "tied"; });
  EXPECT_NE(e.find("tied"), std::string::npos) << e;
  EXPECT_NE(e.find("edgellm_exits.json"), std::string::npos) << e;
  e = with([](nlohmann::json& j) { j["exit_depths"] = {2, 2, 5}; });
  EXPECT_NE(e.find("increase"), std::string::npos) << e;
  e = with([](nlohmann::json& j) { j["exit_depths"] = {2, 9}; });
  EXPECT_NE(e.find("exit_depths[1]"), std::string::npos) << e;
  e = with([](nlohmann::json& j) { j["n_layers"] = 12; });
  EXPECT_NE(e.find("'n_layers' is 12"), std::string::npos) << e;
  e = with([](nlohmann::json& j) { j.erase("window"); });
  EXPECT_NE(e.find("'window' missing"), std::string::npos) << e;
  // Cloned config over a shared file: the lm_head tensors are missing.
  e = with([](nlohmann::json& j) { j["head_mode"] = "cloned"; });
  EXPECT_NE(e.find("'exits.0.lm_head.weight' missing"), std::string::npos) << e;
  // One exit fewer in the config than heads in the file: the extra tensor is named.
  e = with([](nlohmann::json& j) { j["exit_depths"] = {2, 5}; });
  EXPECT_NE(e.find("unexpected tensor 'exits.1.norm.weight'"), std::string::npos) << e;
  std::ofstream(js) << good;
  // A gain of the wrong length.
  write_safetensors_f32(st, std::vector<NamedF32>{{"exits.0.norm.weight", {3}, {1, 2, 3}},
                                                  {"exits.1.norm.weight", {3}, {1, 2, 3}}});
  e = error_of([&] { ExitHeads::load(dir_, c); });
  EXPECT_NE(e.find("'exits.0.norm.weight' has shape [3]"), std::string::npos) << e;
  std::ofstream(js) << "{not json";
  e = error_of([&] { ExitHeads::load(dir_, c); });
  EXPECT_NE(e.find("malformed"), std::string::npos) << e;
}

TEST_F(ExitHeadsTest, ForwardExitsKeepsEachDepthAndItsDeepestExitIsForward) {
  const ModelConfig& c = m_->config();
  const std::vector<int32_t> ids{1, 45, 99, 300, 7, 12, 250};
  const int64_t T = static_cast<int64_t>(ids.size());
  InferenceState a(*m_, 32), b(*m_, 32);
  const std::vector<int> depths{2, 4, 5};
  const float* hid = a.forward_exits(ids.data(), T, depths);
  std::vector<float> h(hid, hid + 3 * T * c.dim);
  // Reference: embed + forward_layers up to each depth, by hand.
  std::vector<float> x(T * c.dim);
  b.embed(ids.data(), T, x.data());
  int l = 0;
  for (int i = 0; i < 3; ++i) {
    b.forward_layers(x.data(), T, 0, l, depths[i]);
    l = depths[i];
    for (int64_t k = 0; k < T * c.dim; ++k) ASSERT_EQ(h[i * T * c.dim + k], x[k]) << i;
  }
  EXPECT_EQ(a.pos(), T);
  // The depth-L exit through the model's head = forward()'s final hidden state and logits.
  InferenceState f(*m_, 32);
  const float* fin = f.forward(ids.data(), T);
  std::vector<float> xn(T * c.dim);
  head_norm(c, m_->head(), h.data() + 2 * T * c.dim, xn.data(), nullptr, T);
  for (int64_t k = 0; k < T * c.dim; ++k) ASSERT_EQ(xn[k], fin[k]);
  // Decoding one more token from the cache agrees too.
  const int32_t nx = 33;
  const float* h2 = a.forward_exits(&nx, 1, depths);
  const float* f2 = f.forward(&nx, 1);
  head_norm(c, m_->head(), h2 + 2 * c.dim, xn.data(), nullptr, 1);
  for (int64_t k = 0; k < c.dim; ++k) ASSERT_EQ(xn[k], f2[k]);
}

}  // namespace
}  // namespace edgellm
