// Generation output as a reader sees it, and perplexity that refuses to report NaN.
#include "eval/generate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "eval/model_files.h"
#include "eval/perplexity.h"
#include "model/lora.h"
#include "test_util.h"
#include "util/error.h"

namespace edgellm {
namespace {

// "The cat sat ona big tree": decoding the generated ids alone drops the dummy-prefix space of
// the first one. The truth is the text itself: prompt + continuation must read as written.
TEST(Generate, ContinuationKeepsTheSpaceOfItsFirstToken) {
  EDGELLM_REQUIRE_DATA(testing::kStories260KBin);
  auto tok = load_tokenizer(testing::data_path("models/stories260K/tok512.bin"));
  const std::string prompt = "The cat sat on", rest = " a big tree";
  std::vector<int32_t> p = {tok->bos_id()}, all = {tok->bos_id()};
  for (int32_t id : tok->encode(prompt)) p.push_back(id);
  for (int32_t id : tok->encode(prompt + rest)) all.push_back(id);
  ASSERT_GT(all.size(), p.size());
  ASSERT_TRUE(std::equal(p.begin(), p.end(), all.begin())) << "prompt tokens are not a prefix";
  const std::vector<int32_t> cont(all.begin() + static_cast<long>(p.size()), all.end());
  EXPECT_NE(tok->decode(cont), rest);  // the bug this guards against
  EXPECT_EQ(decode_continuation(*tok, p, cont), rest);
  // Empty prompt: the text starts at BOS, so the first piece's space is dropped as before.
  std::vector<int32_t> bos = {tok->bos_id()};
  EXPECT_EQ(decode_continuation(*tok, bos, tok->encode("Hello there")), "Hello there");
}

TEST(Generate, StreamedAndReturnedTextAreTheContinuationOfThePrompt) {
  EDGELLM_REQUIRE_DATA(testing::kStories260KBin);
  auto m = Model::load(testing::stories260k_path());
  auto tok = load_tokenizer_for(*m, "");
  SamplerConfig sc;
  sc.temperature = 0;
  std::string streamed;
  const GenerateResult r =
      generate(*m, *tok, "Once upon a", 12, sc, [&](const std::string& s) { streamed += s; });
  EXPECT_EQ(streamed, r.text);
  // Greedy stories260K continues "Once upon a" with "▁time": the text must start " time".
  ASSERT_FALSE(r.ids.empty());
  EXPECT_EQ(r.text.rfind(" time", 0), 0u) << "'" << r.text << "'";
}

TEST(Perplexity, NonFiniteLogitsStopTheRunInsteadOfReportingNaN) {
  EDGELLM_REQUIRE_DATA(testing::kStories260KBin);
  auto m = Model::load(testing::stories260k_path());
  auto tok = load_tokenizer_for(*m, "");
  const std::vector<int32_t> ids = ppl_tokens(*tok, "Once upon a time there was a cat.", 0);
  PplOptions o;
  o.ctx = 64;
  EXPECT_TRUE(std::isfinite(perplexity(*m, ids, o).ppl));
  // An adapter made in memory (adapter files are checked at load) with one NaN weight.
  LoraConfig lc;
  lc.rank = 2;
  LoraAdapters ad(m->config(), lc);
  ad.init_peft(1);
  for (float& b : ad.params()) b = b == 0.f ? 0.01f : b;  // B = 0 would hide A's NaN
  ad.params()[5] = NAN;
  o.adapter = &ad;
  try {
    perplexity(*m, ids, o);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("non-finite"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace edgellm
