// Sampling and the perplexity protocols, each checked against an independent computation.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

#include "eval/model_files.h"
#include "eval/perplexity.h"
#include "kernels/activations.h"
#include "model/forward.h"
#include "model/sampler.h"
#include "test_util.h"
#include "util/error.h"

namespace edgellm {
namespace {

TEST(Sampler, GreedyTopKOneAndTinyTopPAllPickTheArgmax) {
  std::vector<float> logits{0.1f, 2.0f, -1.f, 1.9f, 0.f};
  EXPECT_EQ(Sampler({0.f, 0, 1.f, 1}).sample(logits.data(), 5), 1);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    EXPECT_EQ(Sampler({1.f, 1, 1.f, seed}).sample(logits.data(), 5), 1);
    EXPECT_EQ(Sampler({1.f, 0, 1e-6f, seed}).sample(logits.data(), 5), 1);
  }
}

TEST(Sampler, SameSeedSameSequenceAndFrequenciesFollowSoftmax) {
  std::vector<float> logits{0.5f, 1.5f, -0.5f, 1.0f};
  Sampler a({0.8f, 0, 1.f, 7}), b({0.8f, 0, 1.f, 7});
  for (int i = 0; i < 100; ++i) ASSERT_EQ(a.sample(logits.data(), 4), b.sample(logits.data(), 4));
  // Empirical frequencies vs softmax(logits / T): 4 sigma of a binomial with n = 200000.
  std::vector<float> p = logits;
  softmax_inplace(p.data(), 4, 0.8f);
  std::vector<int> count(4);
  const int n = 200000;
  Sampler s({0.8f, 0, 1.f, 11});
  for (int i = 0; i < n; ++i) ++count[s.sample(logits.data(), 4)];
  for (int j = 0; j < 4; ++j)
    EXPECT_NEAR(count[j] / double(n), p[j], 4 * std::sqrt(p[j] * (1 - p[j]) / n)) << j;
}

TEST(Sampler, TopKAndTopPRenormaliseOverTheKeptSet) {
  std::vector<float> logits{3.f, 2.f, 1.f, 0.f};  // softmax ≈ .64 .24 .09 .03
  std::map<int, int> seen;
  Sampler k2({1.f, 2, 1.f, 3});
  for (int i = 0; i < 5000; ++i) ++seen[k2.sample(logits.data(), 4)];
  EXPECT_EQ(seen.size(), 2u);  // only the two most likely ever appear
  seen.clear();
  Sampler p8({1.f, 0, 0.8f, 3});  // .64 < .8 <= .88: the top two make the nucleus
  for (int i = 0; i < 5000; ++i) ++seen[p8.sample(logits.data(), 4)];
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_NEAR(seen[0] / 5000.0, 0.64 / 0.88, 0.03);
}

// NLL of predicting ids[i+1] from ids[..i] by decoding one token at a time (the KV-cache path,
// independent of the batched windowing code under test).
std::vector<double> nll_by_decode(const Model& m, const std::vector<int32_t>& ids) {
  InferenceState st(m, static_cast<int64_t>(ids.size()));
  std::vector<double> out;
  for (size_t i = 0; i + 1 < ids.size(); ++i) {
    const float* l = st.forward_last_logits(&ids[i], 1);
    float loss;
    cross_entropy_forward(&loss, l, &ids[i + 1], 1, m.config().vocab_size);
    out.push_back(loss);
  }
  return out;
}

class Protocols : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(testing::stories260k_path()))
      GTEST_SKIP() << "stories260K missing";
    m_ = Model::load(testing::stories260k_path());
    auto tok = load_tokenizer_for(*m_, "");
    ids_ = ppl_tokens(*tok, read_text(), 300);
  }
  static std::string read_text() {
    std::ifstream f(testing::data_path("text/tinystories/tinystories_val.txt"));
    std::string s(20000, '\0');
    f.read(s.data(), s.size());
    s.resize(f.gcount());
    return s;
  }
  std::shared_ptr<Model> m_;
  std::vector<int32_t> ids_;
};

TEST_F(Protocols, StandardScoresEveryPredictionOfEachWindow) {
  PplOptions o;
  o.ctx = 128;
  PplResult r = perplexity(*m_, ids_, o);
  EXPECT_EQ(r.tokens, 300);
  EXPECT_EQ(r.windows, 3);  // 128 + 128 + 44
  EXPECT_EQ(r.predictions, 127 + 127 + 43);
  double sum = 0;
  for (int64_t s = 0; s < 300; s += 128) {
    std::vector<int32_t> w(ids_.begin() + s, ids_.begin() + std::min<int64_t>(300, s + 128));
    for (double v : nll_by_decode(*m_, w)) sum += v;
  }
  EXPECT_NEAR(r.mean_nll, sum / r.predictions, 1e-4);
  EXPECT_NEAR(r.ppl, std::exp(r.mean_nll), 1e-9);
  o.protocol = PplProtocol::EdgeLlmPaper;  // = standard with 128-token windows, whatever --ctx says
  o.ctx = 512;
  EXPECT_NEAR(perplexity(*m_, ids_, o).mean_nll, r.mean_nll, 1e-9);
}

TEST_F(Protocols, LlamaCppScoresSecondHalfOfBosPrefixedChunks) {
  PplOptions o;
  o.protocol = PplProtocol::LlamaCpp;
  o.ctx = 64;
  PplResult r = perplexity(*m_, ids_, o);
  EXPECT_EQ(r.windows, 300 / 64);
  EXPECT_EQ(r.predictions, (300 / 64) * (64 - 1 - 32));
  double sum = 0;
  for (int64_t c = 0; c < 300 / 64; ++c) {
    std::vector<int32_t> w(ids_.begin() + c * 64, ids_.begin() + (c + 1) * 64);
    w[0] = m_->config().bos_id;
    auto nll = nll_by_decode(*m_, w);
    for (int64_t i = 32; i < 63; ++i) sum += nll[i];
  }
  EXPECT_NEAR(r.mean_nll, sum / r.predictions, 1e-4);
}

TEST_F(Protocols, BitsPerByteCountTheBytesOfTheEvaluatedText) {
  // A whole paragraph, so the evaluated text is exactly known: its bytes are the text's bytes.
  const std::string text = read_text().substr(0, read_text().find("\n\n"));
  auto tok = load_tokenizer_for(*m_, "");
  const std::vector<int32_t> ids = ppl_tokens(*tok, text, 0);
  PplOptions o;
  o.ctx = 64;
  PplResult r = perplexity(*m_, ids, o);
  add_bits_per_byte(r, *tok, ids);
  EXPECT_EQ(r.bytes, static_cast<int64_t>(text.size()));
  // Σ NLL over the tokens in bits, spread over the bytes they spell.
  EXPECT_NEAR(r.bpb, r.mean_nll * double(ids.size() - 1) / std::log(2.0) / double(text.size()),
              1e-12);
  EXPECT_GT(r.bpb, 0.3);  // stories260K is a real but weak model: neither 0 nor absurd
  EXPECT_LT(r.bpb, 3.0);
}

TEST_F(Protocols, RejectsBadOptions) {
  PplOptions o;
  o.ctx = 1;
  EXPECT_THROW(perplexity(*m_, ids_, o), Error);
  o.ctx = 100000;
  EXPECT_THROW(perplexity(*m_, ids_, o), Error);
  EXPECT_THROW(ppl_protocol_from_name("wikitext"), Error);
  o.ctx = 512;
  o.protocol = PplProtocol::LlamaCpp;  // 300 tokens < one 512 chunk
  EXPECT_THROW(perplexity(*m_, ids_, o), Error);
}

}  // namespace
}  // namespace edgellm
