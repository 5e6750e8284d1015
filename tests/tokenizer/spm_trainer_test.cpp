// train-tokenizer: libsentencepiece's trainer output round-trips text exactly, and the pure
// SPM-BPE implementation (tokenizer/spm_bpe.h, reached through the GGUF metadata path) gives the
// same ids as libsentencepiece on the trained model — two independent encoders agreeing.
#include "tokenizer/spm_trainer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {
namespace {

TEST(SpmTrainer, TrainedModelRoundTripsAndAgreesWithTheIndependentEncoder) {
  EDGELLM_REQUIRE_DATA(testing::kShakespeare);
  const std::string dir = testing::temp_dir("spm_train");
  const std::string text = read_file(testing::data_path(testing::kShakespeare));
  const std::string train = dir + "/train.txt";
  std::ofstream(train) << text.substr(0, 200000);
  SpmTrainOptions o;
  o.files = {train};
  o.vocab_size = 400;
  o.out_dir = dir + "/tok";
  o.threads = 1;
  const SpmTrainResult r = train_spm_tokenizer(o);
  ASSERT_TRUE(std::filesystem::exists(r.model_path));
  EXPECT_FALSE(std::filesystem::exists(dir + "/tok.tmp"));
  const auto tok = load_tokenizer(r.model_path);
  EXPECT_EQ(tok->vocab_size(), 400);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  const auto pure = tokenizer_from_gguf(tokenizer_to_gguf(*tok), "gguf metadata");
  // Held-out text (past the training slice), plus what only byte fallback can spell.
  const std::vector<std::string> samples = {
      text.substr(600000, 3000),
      "Numbers 12345 and 3.14159,  double  spaces,\ttabs\nand lines.",
      "Unseen: naïve café, Ελληνικά, 日本語, emoji 🙂, and \x01 control.",
      " leading space",
      "trailing space ",
      ""};
  for (const std::string& s : samples) {
    const std::vector<int32_t> ids = tok->encode(s);
    EXPECT_EQ(tok->decode(ids), s);
    EXPECT_EQ(pure->encode(s), ids) << s.substr(0, 60);
    for (int32_t id : ids) EXPECT_NE(id, 0) << "byte fallback leaves nothing <unk>";
  }
  // The vocabulary compresses: 400 pieces spell held-out Shakespeare in < 3/4 token per byte.
  EXPECT_LT(tok->encode(samples[0]).size(), samples[0].size() * 3 / 4);
  std::filesystem::remove_all(dir);
}

TEST(SpmTrainer, BadOptionsFailClearly) {
  SpmTrainOptions o;
  o.files = {"/nonexistent/file.txt"};
  o.out_dir = testing::temp_dir("spm_bad") + "/tok";
  try {
    train_spm_tokenizer(o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/file.txt"), std::string::npos);
  }
  o.vocab_size = 100;
  try {
    train_spm_tokenizer(o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--vocab 100"), std::string::npos);
  }
}

}  // namespace
}  // namespace edgellm
