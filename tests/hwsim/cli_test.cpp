// The `edgellm sim` commands end to end (skipped when the CLI binary has not been built).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace {

std::string run(const std::string& args, int* rc) {
  std::string out;
  FILE* p = popen((edgellm::testing::cli_path() + " " + args + " 2>&1").c_str(), "r");
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  *rc = pclose(p);
  return out;
}

#define REQUIRE_CLI()                                         \
  if (!std::filesystem::exists(edgellm::testing::cli_path())) \
  GTEST_SKIP() << "CLI not built: " << edgellm::testing::cli_path()

TEST(SimCli, GemmJson) {
  REQUIRE_CLI();
  int rc = 0;
  const auto out =
      run("sim gemm --rows 32 --cols 32 --dataflow ws --m 16 --n 768 --k 768 --json", &rc);
  ASSERT_EQ(rc, 0) << out;
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["total_cycles"].get<long long>(), 63359);  // scalesim_vectors.csv
  EXPECT_TRUE(j.contains("overall_util_pct") && j.contains("mapping_eff_pct") &&
              j.contains("compute_util_pct"));
}

TEST(SimCli, TraceFlagFormAndBadDevice) {
  REQUIRE_CLI();
  int rc = 0;
  auto out =
      run("sim --trace --model-config stories260K --method alt --exit 4 --window 2 --seq 32", &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_GT(nlohmann::json::parse(out)["ops"].size(), 10u);
  const std::string dir = edgellm::testing::temp_dir("hwsim_cli");
  const std::string bad = dir + "/dev.json";
  FILE* f = fopen(bad.c_str(), "w");
  fputs("{\"name\": \"x\"}", f);
  fclose(f);
  out = run("sim search --model-config stories260K --device " + bad, &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("missing section 'array'"), std::string::npos) << out;
  std::filesystem::remove_all(dir);
}

}  // namespace
