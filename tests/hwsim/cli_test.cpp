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
  FILE* p = popen((edgellm::testing::cli_command() + " " + args + " 2>&1").c_str(), "r");
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

// `sim --from-run`: a real (tiny) ALT run of stories260K and partial tuning, estimated on a
// device. The estimate must equal the mean over the run's exits of `sim` given the same shape,
// method, exit, window, seq, batch, rank and samples by hand, and carry the measured CPU figures.
TEST(SimCli, FromRunEqualsTheHandGivenConfigurationPerExit) {
  REQUIRE_CLI();
  const std::string model = edgellm::testing::stories260k_path();
  const std::string text = edgellm::testing::data_path("text/tinyshakespeare/input.txt");
  if (!std::filesystem::exists(model) || !std::filesystem::exists(text))
    GTEST_SKIP() << "stories260K or Shakespeare missing";
  const std::string dir = edgellm::testing::temp_dir("sim_from_run");
  int rc = 0;
  std::string out = run("tune --model " + model + " --data " + text +
                            " --method alt --exit-layers 2,5 --window 2 --steps 4 --seq 32 "
                            "--batch 2 --grad-accum 3 --rank 4 --out " +
                            dir + "/alt",
                        &rc);
  ASSERT_EQ(rc, 0) << out;
  out = run("sim --from-run " + dir + "/alt --device tx2 --json", &rc);
  ASSERT_EQ(rc, 0) << out;
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["method"], "alt");
  EXPECT_EQ(j["exit_depths"], nlohmann::json({2, 5}));
  EXPECT_EQ(j["window"], 2);
  EXPECT_EQ(j["samples_per_iteration"], 6);
  EXPECT_GT(j["measured_cpu_seconds_per_step"].get<double>(), 0.0);
  EXPECT_GT(j["measured_cpu_peak_rss_bytes"].get<double>(), 0.0);
  double sum = 0;
  for (int exit : {2, 5}) {
    const std::string o =
        run("sim --model-config " + dir +
                "/alt/base_config.json --device tx2 --method alt --exit " + std::to_string(exit) +
                " --window 2 --seq 32 --batch 2 "
                "--rank 4 --samples 6 --json",
            &rc);
    ASSERT_EQ(rc, 0) << o;
    sum += nlohmann::json::parse(o)["results"]["paper"]["iteration_seconds"].get<double>();
  }
  EXPECT_NEAR(j["estimated_seconds_per_iteration"].get<double>(), sum / 2, 1e-12 * sum);
  // LoRA on the last layers only is simulated as partial tuning.
  out = run("tune --model " + model + " --data " + text +
                " --method partial --last 2 --steps 2 --seq 32 --out " + dir + "/partial",
            &rc);
  ASSERT_EQ(rc, 0) << out;
  out = run("sim --from-run " + dir + "/partial --json", &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(nlohmann::json::parse(out)["method"], "partial");
  // A directory that is not a run is an error naming the file.
  out = run("sim --from-run " + dir, &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find(dir + "/run.json"), std::string::npos) << out;
  std::filesystem::remove_all(dir);
}
