// Data-free calibration: deterministic per seed, BOS-led rows of exactly seq tokens with no
// BOS/EOS after the first, longer sets extend shorter ones, and at a vanishing temperature the
// samples are the greedy continuation computed independently (whole prefix re-run every step,
// no KV cache).
#include "eval/data_free_calib.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <limits>

#include "io/model_writer.h"
#include "model/forward.h"
#include "model/sampler.h"
#include "test_util.h"

namespace edgellm {
namespace {

std::shared_ptr<Model> tiny_model() {
  static std::shared_ptr<Model> m = [] {
    const std::string dir = testing::temp_dir("calib_model");
    write_hf_dir(ModelConfig::parse_shape("dim=32,layers=2,heads=4,kv_heads=2,ff=64,vocab=96,"
                                          "ctx=64,tied=1"),
                 random_source(11, 0.3f), dir, DType::F32);
    auto mm = Model::load(dir);
    std::filesystem::remove_all(dir);
    return mm;
  }();
  return m;
}

TEST(DataFreeCalib, DeterministicPerSeedAndWellFormed) {
  const auto m = tiny_model();
  DataFreeCalibOptions o;
  o.n = 3;
  o.seq = 20;
  o.seed = 4;
  const auto a = data_free_calibration(*m, o), b = data_free_calibration(*m, o);
  EXPECT_EQ(a, b);
  ASSERT_EQ(a.size(), 3u);
  for (const auto& s : a) {
    ASSERT_EQ(s.size(), 20u);
    EXPECT_EQ(s[0], m->config().bos_id);
    for (size_t t = 1; t < s.size(); ++t) {
      EXPECT_NE(s[t], m->config().bos_id);
      EXPECT_NE(s[t], m->config().eos_id);
      EXPECT_GE(s[t], 0);
      EXPECT_LT(s[t], m->config().vocab_size);
    }
  }
  EXPECT_NE(a[0], a[1]);  // each row has its own stream
  o.seed = 5;
  EXPECT_NE(data_free_calibration(*m, o), a);
  // A longer set starts with the shorter one.
  o.seed = 4;
  o.n = 2;
  const auto c = data_free_calibration(*m, o);
  EXPECT_EQ(c[0], a[0]);
  EXPECT_EQ(c[1], a[1]);
}

TEST(DataFreeCalib, ColdSamplingIsTheIndependentGreedyContinuation) {
  const auto m = tiny_model();
  const ModelConfig& c = m->config();
  DataFreeCalibOptions o;
  o.n = 1;
  o.seq = 12;
  o.temperature = 1e-4f;
  const auto got = data_free_calibration(*m, o)[0];
  std::vector<int32_t> ids{c.bos_id};
  std::vector<float> lg;
  while (ids.size() < 12) {
    InferenceState st(*m, 64);
    const float* l = st.forward_last_logits(ids.data(), static_cast<int64_t>(ids.size()));
    lg.assign(l, l + c.vocab_size);
    lg[c.bos_id] = lg[c.eos_id] = -std::numeric_limits<float>::infinity();
    ids.push_back(argmax(lg.data(), c.vocab_size));
  }
  EXPECT_EQ(got, ids);
}

}  // namespace
}  // namespace edgellm
