// Flags and runtime settings at the CLI boundary: nonsense values are refused before any work
// with the flag and the value in the message; the OpenMP wait policy is passive unless the user
// chose one; the simulator's zero window is an error, not a SIGFPE.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "test_util.h"

namespace edgellm {
namespace {

struct CliResult {
  int code;  // exit status; -1 if killed by a signal
  std::string out;
};

CliResult run(const std::string& env, const std::string& args) {
  const testing::CliOutput r = testing::run_cli(args, true, env);
  return {r.code, r.out};
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

TEST(CliReliability, SimWithZeroWindowIsAnErrorNotASignal) {
  for (const char* m : {"alt", "partial"}) {
    const CliResult r =
        run("", std::string("sim --model-config stories260K --method ") + m + " --window 0");
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find("window"), std::string::npos) << r.out;
  }
}

TEST(CliReliability, NonsenseTuneFlagsAreRefusedWithFlagAndValue) {
  EDGELLM_REQUIRE_DATA("models/stories260K/stories260K.bin");
  const std::string base =
      "tune --model " + testing::stories260k_path() + " --data /nonexistent --out /nonexistent ";
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"--lr nan", {"--lr", "nan"}},
      {"--lr inf", {"--lr", "inf"}},
      {"--lr -0.001", {"--lr", "-0.001"}},
      {"--val-frac 2", {"--val-frac", "2"}},
      {"--val-frac -0.1", {"--val-frac"}},
      {"--lora-layers 5-3", {"--lora-layers", "5-3", "empty"}},
      {"--lora-layers ,", {"--lora-layers", "no layers"}},
      {"--lora-layers 0-2000000000", {"--lora-layers", "2000000000"}},
      {"--lora-layers 1x", {"--lora-layers", "'1x'"}},
      {"--log-every 0", {"--log-every", "positive"}},
      {"--dropout 1", {"--dropout"}},
      {"--clip nan", {"--clip"}},
      {"--method alt --prefix-cache-dtype fp8", {"--prefix-cache-dtype", "'fp8'"}},
      {"--prefix-cache-dir /tmp", {"--prefix-cache-dir", "--method alt"}},
      {"--method alt --prefix-cache-dir /tmp", {"--prefix-cache-dir", "branch"}},
      {"--method alt --lora-mode branch --prefix-cache-dir /no/such/dir",
       {"--prefix-cache-dir", "'/no/such/dir'", "not a directory"}},
      {"--optim-offload /no/such/dir", {"--optim-offload", "'/no/such/dir'", "not a directory"}},
  };
  for (const auto& [flags, needles] : cases) {
    const CliResult r = run("", base + flags);
    EXPECT_EQ(r.code, 1) << flags << ": " << r.out;
    for (const std::string& n : needles)
      EXPECT_NE(r.out.find(n), std::string::npos) << flags << ": " << r.out;
    // Refused at the boundary: no data file was opened.
    EXPECT_EQ(r.out.find("/nonexistent"), std::string::npos) << flags << ": " << r.out;
  }
}

// A write that fails (a file-size limit, as a full disk would) is a clear error naming the
// output; the previous output directory stays whole and no temporary directory is left.
TEST(CliReliability, FailedWriteKeepsThePreviousOutput) {
  EDGELLM_REQUIRE_DATA("models/stories260K/stories260K.bin");
  const std::string dir = testing::temp_dir("cli_fsize");
  const std::string out = dir + "/converted";
  const std::string args =
      "convert --model " + testing::stories260k_path() + " --to safetensors --out " + out;
  ASSERT_EQ(run("", args + " --dtype f16").code, 0);
  const std::string before = read_bytes(out + "/model.safetensors");
  ASSERT_GT(before.size(), 256u << 10);
  // bash's ulimit -f counts 1024-byte blocks; SIGXFSZ ignored makes write() fail with EFBIG.
  const CliResult r = run("trap '' XFSZ; ulimit -f 256;", args + " --dtype f32");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find(out), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("write failed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("File too large"), std::string::npos) << r.out;
  EXPECT_EQ(read_bytes(out + "/model.safetensors"), before);
  for (const auto& e : std::filesystem::directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string(), "converted") << "left behind: " << e.path();
  std::filesystem::remove_all(dir);
}

TEST(CliReliability, OpenMpWaitPolicyIsPassiveUnlessTheUserChoseOne) {
  EDGELLM_REQUIRE_DATA("models/stories260K/stories260K.bin");
  CliResult r = run("env -u OMP_WAIT_POLICY", "info --json --model " + testing::stories260k_path());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out)["omp_wait_policy"], "PASSIVE");
  r = run("env OMP_WAIT_POLICY=active", "info --json --model " + testing::stories260k_path());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out)["omp_wait_policy"], "active");
}

}  // namespace
}  // namespace edgellm
