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

#include "test_util.h"

namespace edgellm {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    setenv("OMP_NUM_THREADS", "1", 1);
    if (!freopen(log.c_str(), "a", stdout) || !freopen(log.c_str(), "a", stderr)) _exit(126);
    std::vector<char*> argv;
    std::string prog = testing::cli_path();
    argv.push_back(prog.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(prog.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

// Runs to completion; returns the exit status and the wall time.
std::pair<int, double> run_to_end(const std::vector<std::string>& args, const std::string& log) {
  const auto t0 = Clock::now();
  const pid_t pid = spawn(args, log);
  int status = 0;
  waitpid(pid, &status, 0);
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, s};
}

struct Trials {
  int killed = 0;    // runs that the SIGKILL stopped
  int finished = 0;  // runs that ended by themselves before their kill moment
};

// Re-runs `args` (which must resume) with a SIGKILL after a random delay in [0, span) until a run
// ends by itself, `kills` kills at most; then a last run without a kill if none finished.
Trials kill_until_done(const std::vector<std::string>& args, double span, int kills, uint64_t seed,
                       const std::string& log) {
  std::mt19937_64 rng(seed);
  // Over the first 60% of the reference's time: run times vary by tens of percent between runs
  // on a loaded machine, and a kill drawn past the end would test nothing.
  std::uniform_real_distribution<double> when(0.0, 0.6 * span);
  Trials t;
  for (int i = 0; i < kills; ++i) {
    const pid_t pid = spawn(args, log);
    const auto deadline = Clock::now() + std::chrono::duration<double>(when(rng));
    int status = 0;
    pid_t done = 0;
    while ((done = waitpid(pid, &status, WNOHANG)) == 0 && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (done == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    }
    if (WIFSIGNALED(status)) {
      ++t.killed;
      continue;
    }
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << slurp(log);
    ++t.finished;
    return t;
  }
  EXPECT_EQ(run_to_end(args, log).first, 0) << slurp(log);
  ++t.finished;
  return t;
}

// Every regular file under `dir` whose name says it is temporary.
std::vector<std::string> leftovers(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.find(".tmp") != std::string::npos) out.push_back(e.path().string());
  }
  return out;
}

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
