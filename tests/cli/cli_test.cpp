// The CLI as scripts use it: the invocations the issues promise must work as written, print
// what they promise, and fail cleanly (exit != 0, a message naming file/field/value) on bad input.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "test_util.h"

namespace edgellm {
namespace {

struct CliRun {
  int code;
  std::string out;  // stdout + stderr
};

CliRun run(const std::string& args) {
  const testing::CliOutput r = testing::run_cli(args);
  return {r.code, r.out};
}

TEST(Cli, GenerateGreedyFindsTokenizerBesideBin) {
  EDGELLM_REQUIRE_DATA("models/stories260K/stories260K.bin");
  CliRun r = run("generate --model " + testing::stories260k_path() + " -n 60 --temp 0");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("Once upon a time, there was a little girl named Lily."), std::string::npos)
      << r.out;
}

TEST(Cli, PplJsonHasPromisedKeys) {
  EDGELLM_REQUIRE_DATA("models/stories260K/stories260K.bin");
  CliRun r = run("ppl --model " + testing::stories260k_path() + " --text " +
                 testing::data_path("text/tinystories/tinystories_val.txt") +
                 " --ctx 512 --max-tokens 2048 --json 2>/dev/null");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  for (const char* k : {"ppl", "mean_nll", "tokens", "windows", "seconds"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["tokens"].get<int>(), 2048);
  EXPECT_GT(j["ppl"].get<double>(), 2.0);
  EXPECT_LT(j["ppl"].get<double>(), 8.0);
}

TEST(Cli, ConvertRoundTripsThroughSafetensorsAndGguf) {
  EDGELLM_REQUIRE_DATA("models/stories260K/stories260K.bin");
  const std::string dir = testing::temp_dir("cli_convert");
  ASSERT_EQ(run("convert --model " + testing::stories260k_path() + " --to safetensors --out " +
                dir + "/hf")
                .code,
            0);
  ASSERT_EQ(run("convert --model " + dir + "/hf --to gguf --out " + dir + "/m.gguf").code, 0);
  ASSERT_EQ(run("convert --model " + dir + "/m.gguf --to safetensors --out " + dir + "/hf2").code,
            0);
  // GGUF -> HF cannot emit a tokenizer file (the vocabulary lives in GGUF metadata), so the
  // last one names it explicitly; the first two find theirs (copied into the dir / embedded).
  const std::string tok = " --tokenizer " + testing::data_path("models/stories260K/tok512.bin");
  for (const std::string& m : {dir + "/hf", dir + "/m.gguf", dir + "/hf2" + tok}) {
    CliRun r = run("generate --model " + m + " -n 30 --temp 0");
    ASSERT_EQ(r.code, 0) << m << ": " << r.out;
    EXPECT_NE(r.out.find("Once upon a time, there was a little girl named Lily."),
              std::string::npos)
        << m << ": " << r.out;
  }
  std::filesystem::remove_all(dir);
}

TEST(Cli, FullFineTuningWritesASelfContainedModelThatFitsTheData) {
  EDGELLM_REQUIRE_DATA("models/stories260K/stories260K.bin");
  EDGELLM_REQUIRE_DATA("text/tinyshakespeare/input.txt");
  const std::string dir = testing::temp_dir("cli_full");
  {
    std::ifstream in(testing::data_path("text/tinyshakespeare/input.txt"));
    std::string text(100000, '\0');
    in.read(text.data(), text.size());
    std::ofstream(dir + "/sh.txt") << text.substr(0, in.gcount());
  }
  CliRun r = run("tune --model " + testing::stories260k_path() + " --data " + dir +
                 "/sh.txt --method full --steps 30 " + "--seq 64 --lr 1e-3 --threads 1 --out " +
                 dir + "/ft");
  ASSERT_EQ(r.code, 0) << r.out;
  auto ppl = [&](const std::string& m) {
    CliRun p =
        run("ppl --model " + m + " --text " + dir + "/sh.txt --max-tokens 2048 --json 2>/dev/null");
    EXPECT_EQ(p.code, 0) << p.out;
    return nlohmann::json::parse(p.out)["ppl"].get<double>();
  };
  // The output directory carries its tokenizer (no --tokenizer needed) and fits Shakespeare
  // far better than the TinyStories base.
  const double base = ppl(testing::stories260k_path()), tuned = ppl(dir + "/ft");
  std::printf("full fine-tuning, Shakespeare ppl: base %.2f -> tuned %.2f\n", base, tuned);
  EXPECT_LT(tuned, 0.6 * base);
  std::filesystem::remove_all(dir);
}

TEST(Cli, MmluReadsTheHendrycksLayoutAndReportsEveryFigure) {
  EDGELLM_REQUIRE_DATA("models/stories260K/stories260K.bin");
  const std::string dir = testing::temp_dir("cli_mmlu");
  std::filesystem::create_directories(dir + "/dev");
  std::filesystem::create_directories(dir + "/test");
  // The original headerless layout (answer letters), one subject with a quoted comma.
  std::ofstream(dir + "/dev/astronomy_dev.csv") << "What is the Sun?,A star,A planet,A moon,A "
                                                   "comet,A\nHow many moons has Mars?,0,1,2,3,C\n";
  std::ofstream(dir + "/test/astronomy_test.csv")
      << "Which planet is red?,Venus,Mars,\"Earth, mostly\",Jupiter,B\n"
         "What orbits the Earth?,The Moon,The Sun,Mars,Venus,A\n"
         "Which is a gas giant?,Mercury,Mars,Venus,Jupiter,D\n";
  CliRun r =
      run("mmlu --model " + testing::stories260k_path() + " --data " + dir + " --shots 2 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  // Progress lines (stderr, merged here) come before the JSON.
  auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  for (const char* k : {"micro", "macro", "categories", "subjects", "shortened", "truncated",
                        "seconds_per_question", "tokens_reused"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["questions"].get<int>(), 3);
  EXPECT_EQ(j["subjects"][0]["name"], "astronomy");
  EXPECT_EQ(j["categories"][0]["name"], "stem");
  EXPECT_GT(j["tokens_reused"].get<int>(), 0);
  // A malformed row: the error names the file and line.
  std::ofstream(dir + "/test/astronomy_test.csv") << "q,a,b,c,d,A\nq2,a,b,c,d\n";
  r = run("mmlu --model " + testing::stories260k_path() + " --data " + dir);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("astronomy_test.csv line 2"), std::string::npos) << r.out;
  std::filesystem::remove_all(dir);
}

TEST(Cli, BadInputFailsWithClearMessage) {
  const std::string dir = testing::temp_dir("cli_bad");
  // A missing file.
  CliRun r = run("info --model " + dir + "/nope.bin");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("nope.bin"), std::string::npos) << r.out;
  // A truncated llama2.c checkpoint.
  {
    std::ofstream f(dir + "/trunc.bin", std::ios::binary);
    const int32_t hdr[7] = {64, 172, 5, 8, 4, 512, 512};
    f.write(reinterpret_cast<const char*>(hdr), sizeof(hdr));
    f.write("abcd", 4);
  }
  r = run("info --model " + dir + "/trunc.bin");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("trunc.bin"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("Segmentation"), std::string::npos) << r.out;
  // A tokenizer whose vocabulary disagrees with the model (Llama-2's 32000 vs 512).
  if (std::filesystem::exists(testing::data_path("models/llama2-tokenizer/tokenizer.bin")) &&
      std::filesystem::exists(testing::stories260k_path())) {
    r = run("generate --model " + testing::stories260k_path() + " --tokenizer " +
            testing::data_path("models/llama2-tokenizer/tokenizer.bin") + " -n 5");
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("vocab size 32000"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("512"), std::string::npos) << r.out;
  }
  // An unknown perplexity protocol.
  if (std::filesystem::exists(testing::stories260k_path())) {
    r = run("ppl --model " + testing::stories260k_path() + " --text " +
            testing::stories260k_path() + " --protocol nope");
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.out.find("'nope'"), std::string::npos) << r.out;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace edgellm
