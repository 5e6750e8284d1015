// Killing a CLI run at random moments and re-running it until it completes (issue 11, "never
// half-written"): shared by the kill-and-resume tests of tests/cli and tests/pipeline.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

namespace edgellm::testing {

namespace kill_detail {
using Clock = std::chrono::steady_clock;
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

inline pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    setenv("OMP_NUM_THREADS", "1", 1);
    if (!freopen(log.c_str(), "a", stdout) || !freopen(log.c_str(), "a", stderr)) _exit(126);
    std::vector<char*> argv;
    std::string prog = cli_path();
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
inline std::pair<int, double> run_to_end(const std::vector<std::string>& args,
                                         const std::string& log) {
  const auto t0 = kill_detail::Clock::now();
  const pid_t pid = spawn(args, log);
  int status = 0;
  waitpid(pid, &status, 0);
  const double s = std::chrono::duration<double>(kill_detail::Clock::now() - t0).count();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, s};
}

struct Trials {
  int killed = 0;    // runs that the SIGKILL stopped
  int finished = 0;  // runs that ended by themselves before their kill moment
};

// Re-runs `args` (which must resume) with a SIGKILL after a random delay in [0, span) until a run
// ends by itself, `kills` kills at most; then a last run without a kill if none finished.
inline Trials kill_until_done(const std::vector<std::string>& args, double span, int kills,
                              uint64_t seed, const std::string& log) {
  std::mt19937_64 rng(seed);
  // Over the first 60% of the reference's time: run times vary by tens of percent between runs
  // on a loaded machine, and a kill drawn past the end would test nothing.
  std::uniform_real_distribution<double> when(0.0, 0.6 * span);
  Trials t;
  for (int i = 0; i < kills; ++i) {
    const pid_t pid = spawn(args, log);
    const auto deadline = kill_detail::Clock::now() + std::chrono::duration<double>(when(rng));
    int status = 0;
    pid_t done = 0;
    while ((done = waitpid(pid, &status, WNOHANG)) == 0 && kill_detail::Clock::now() < deadline)
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
inline std::vector<std::string> leftovers(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.find(".tmp") != std::string::npos) out.push_back(e.path().string());
  }
  return out;
}

}  // namespace edgellm::testing
