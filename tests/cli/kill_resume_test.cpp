// Killed runs resume to the identical result (issue 11, "never half-written"): `tune`,
// `pretrain` and `compress` are SIGKILLed at random moments, again and again, then re-run with
// the same flags (and --resume) until one run completes; the outputs must be byte-identical to
// an uninterrupted run's, and no temporary file may be left behind in the output directory.
// The kill moments are drawn uniformly over most of the uninterrupted run's own wall time, so they
// land in loading, in steps, in checkpoint writes and in the final writes alike.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "kill_util.h"
#include "test_util.h"

namespace edgellm {
namespace {

namespace fs = std::filesystem;
using testing::kill_until_done;
using testing::leftovers;
using testing::run_to_end;
using testing::slurp;
using testing::spawn;
using testing::Trials;

void expect_same_files(const fs::path& ref, const fs::path& got,
                       const std::vector<std::string>& names) {
  for (const std::string& n : names) {
    ASSERT_TRUE(fs::exists(got / n)) << got / n;
    EXPECT_TRUE(slurp(ref / n) == slurp(got / n)) << n << " differs from the uninterrupted run";
  }
}

// The losses of metrics.jsonl, one per step, in order (timings differ between runs).
std::vector<std::pair<int64_t, double>> losses(const fs::path& p) {
  std::vector<std::pair<int64_t, double>> out;
  std::ifstream f(p);
  for (std::string l; std::getline(f, l);) {
    if (l.empty()) continue;
    const auto j = nlohmann::json::parse(l);
    out.emplace_back(j.at("step").get<int64_t>(), j.at("loss").get<double>());
  }
  return out;
}

constexpr const char* kModel = "models/stories260K/stories260K.bin";
constexpr const char* kTok = "models/stories260K/tok512.bin";
constexpr const char* kText = "text/tinyshakespeare/input.txt";

TEST(KillResume, TuneKilledAtRandomMomentsEndsWithTheSameAdapter) {
  EDGELLM_REQUIRE_DATA(kModel);
  EDGELLM_REQUIRE_DATA(kText);
  const fs::path dir = testing::temp_dir("kill_tune");
  auto args = [&](const fs::path& out) {
    return std::vector<std::string>{"tune",
                                    "--model",
                                    testing::data_path(kModel),
                                    "--tokenizer",
                                    testing::data_path(kTok),
                                    "--data",
                                    testing::data_path(kText),
                                    "--steps",
                                    "30",
                                    "--seq",
                                    "64",
                                    "--save-every",
                                    "2",
                                    "--val-every",
                                    "10",
                                    "--resume",
                                    "--out",
                                    out.string()};
  };
  const auto [code, span] = run_to_end(args(dir / "ref"), (dir / "ref.log").string());
  ASSERT_EQ(code, 0) << slurp(dir / "ref.log");
  const Trials t = kill_until_done(args(dir / "cut"), span, 12, 1, (dir / "cut.log").string());
  EXPECT_GT(t.killed, 0);
  expect_same_files(dir / "ref", dir / "cut", {"adapter_model.safetensors", "adapter_config.json"});
  EXPECT_EQ(losses(dir / "cut" / "metrics.jsonl"), losses(dir / "ref" / "metrics.jsonl"));
  EXPECT_EQ(leftovers(dir / "cut"), std::vector<std::string>{});
  fs::remove_all(dir);
}

// Each run has its own token cache, so kills also land while the corpus is being tokenized.
TEST(KillResume, PretrainKilledAtRandomMomentsEndsWithTheSameModel) {
  EDGELLM_REQUIRE_DATA(kTok);
  EDGELLM_REQUIRE_DATA(kText);
  const fs::path dir = testing::temp_dir("kill_pretrain");
  auto args = [&](const fs::path& out) {
    return std::vector<std::string>{"pretrain",
                                    "--shape",
                                    "dim=32,layers=2,heads=4,kv_heads=2,ff=64,vocab=512,ctx=64",
                                    "--tokenizer",
                                    testing::data_path(kTok),
                                    "--data",
                                    testing::data_path(kText),
                                    "--val-frac",
                                    "0.01",
                                    "--tokens",
                                    "24000",
                                    "--seq",
                                    "64",
                                    "--batch",
                                    "2",
                                    "--save-every",
                                    "3",
                                    "--val-every",
                                    "20",
                                    "--resume",
                                    "--cache",
                                    (dir / ("cache-" + out.filename().string())).string(),
                                    "--out",
                                    out.string()};
  };
  const auto [code, span] = run_to_end(args(dir / "ref"), (dir / "ref.log").string());
  ASSERT_EQ(code, 0) << slurp(dir / "ref.log");
  const Trials t = kill_until_done(args(dir / "cut"), span, 12, 2, (dir / "cut.log").string());
  EXPECT_GT(t.killed, 0);
  expect_same_files(dir / "ref", dir / "cut", {"model.safetensors", "config.json"});
  EXPECT_EQ(losses(dir / "cut" / "metrics.jsonl"), losses(dir / "ref" / "metrics.jsonl"));
  EXPECT_EQ(leftovers(dir / "cut"), std::vector<std::string>{});
  fs::remove_all(dir);
}

TEST(KillResume, CompressKilledAtRandomMomentsLeavesNothingOrTheWholeModel) {
  EDGELLM_REQUIRE_DATA(kModel);
  const fs::path dir = testing::temp_dir("kill_compress");
  auto args = [&](const fs::path& out) {
    return std::vector<std::string>{"compress", "--model",    testing::data_path(kModel),
                                    "--bits",   "4",          "--group",
                                    "32",       "--sparsity", "0.5",
                                    "--out",    out.string()};
  };
  const auto [code, span] = run_to_end(args(dir / "ref"), (dir / "ref.log").string());
  ASSERT_EQ(code, 0) << slurp(dir / "ref.log");
  // Each killed run leaves either no output directory or a complete one (never a partial one).
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> when(0.0, span);
  int killed = 0;
  for (int i = 0; i < 10; ++i) {
    const fs::path out = dir / ("cut" + std::to_string(i));
    const pid_t pid = spawn(args(out), (dir / "cut.log").string());
    std::this_thread::sleep_for(std::chrono::duration<double>(when(rng)));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    killed += WIFSIGNALED(status);
    if (fs::exists(out)) expect_same_files(dir / "ref", out, {"model.safetensors", "config.json"});
  }
  EXPECT_GT(killed, 0);
  // A re-run over whatever a killed run left behind completes and matches.
  const fs::path out = dir / "cut0";
  ASSERT_EQ(run_to_end(args(out), (dir / "cut.log").string()).first, 0) << slurp(dir / "cut.log");
  expect_same_files(dir / "ref", out, {"model.safetensors", "config.json"});
  // The re-run removed the temporary directories its killed predecessors left for `out`.
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string().rfind("cut0.tmp", 0), std::string::npos) << e.path();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace edgellm
