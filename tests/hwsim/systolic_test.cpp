// Scale-Sim v2 equivalence: every row of the reference vectors, exact integer cycles.
#include "hwsim/systolic.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "hwsim_test_util.h"
#include "test_util.h"
#include "util/error.h"

namespace edgellm::hwsim {
namespace {

struct Row {
  int R, C;
  std::string df;
  int64_t M, N, K, total, stall;
  double util, map_eff, comp_util;
};

std::vector<Row> load_rows(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);  // header
  std::vector<Row> rows;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    std::stringstream ss(line);
    std::string cell;
    std::vector<std::string> c;
    while (std::getline(ss, cell, ',')) c.push_back(cell);
    EXPECT_EQ(c.size(), 12u) << line;
    if (c.size() != 12) continue;
    rows.push_back({std::stoi(c[0]), std::stoi(c[1]), c[2], std::stoll(c[3]), std::stoll(c[4]),
                    std::stoll(c[5]), std::stoll(c[6]), std::stoll(c[7]), std::stod(c[8]),
                    std::stod(c[9]), std::stod(c[10])});
  }
  return rows;
}

TEST(Systolic, MatchesScaleSimOnEveryReferenceRow) {
  const std::string path = testing::design_dir() + "/scalesim_vectors.csv";
  if (!std::filesystem::exists(path))
    GTEST_SKIP() << "reference vectors missing: " << path << " (set EDGELLM_DESIGN)";
  const auto rows = load_rows(path);
  ASSERT_GE(rows.size(), 40u);
  for (const auto& r : rows) {
    SCOPED_TRACE(fmt::format("{}x{} {} M={} N={} K={}", r.R, r.C, r.df, r.M, r.N, r.K));
    ASSERT_EQ(r.stall, 0);
    const auto s = systolic_gemm(r.R, r.C, parse_dataflow(r.df, "csv"), {r.M, r.N, r.K});
    EXPECT_EQ(s.total_cycles, r.total);
    EXPECT_NEAR(s.overall_util_pct, r.util, 1e-9 * r.util);
    EXPECT_NEAR(s.mapping_eff_pct, r.map_eff, 1e-9 * r.map_eff);
    EXPECT_NEAR(s.compute_util_pct, r.comp_util, 1e-9 * r.comp_util);
  }
}

TEST(Systolic, SramTrafficPerDataflow) {
  // 16x16, M=100 N=70 K=50: folds and operand re-reads of HWSIM.md §2.
  auto os = systolic_gemm(16, 16, Dataflow::OS, {100, 70, 50});
  EXPECT_EQ(os.sram_ifmap_reads, 100 * 50 * 5);  // ceil(70/16) = 5
  EXPECT_EQ(os.sram_filter_reads, 50 * 70 * 7);  // ceil(100/16) = 7
  EXPECT_EQ(os.sram_ofmap_writes, 100 * 70);
  auto ws = systolic_gemm(16, 16, Dataflow::WS, {100, 70, 50});
  EXPECT_EQ(ws.sram_filter_reads, 50 * 70);
  EXPECT_EQ(ws.sram_ofmap_writes, 100 * 70 * 4);  // ceil(50/16) = 4
  auto is = systolic_gemm(16, 16, Dataflow::IS, {100, 70, 50});
  EXPECT_EQ(is.sram_ifmap_reads, 100 * 50);
  EXPECT_EQ(is.sram_filter_reads, 50 * 70 * 7);
}

TEST(Systolic, FlexiblePrecisionRate) {
  EXPECT_DOUBLE_EQ(mac_rate(4, 8, 1), 2.0);
  EXPECT_DOUBLE_EQ(mac_rate(5, 8, 1), 1.6);
  EXPECT_DOUBLE_EQ(mac_rate(5, 8, 2), 8.0 / 6.0);
  EXPECT_DOUBLE_EQ(mac_rate(3, 8, 4), 2.0);
  EXPECT_DOUBLE_EQ(mac_rate(8, 8, 1), 1.0);
  EXPECT_DOUBLE_EQ(mac_rate(16, 8, 1), 1.0);
}

TEST(Systolic, BadInput) {
  EXPECT_THROW(systolic_gemm(0, 16, Dataflow::OS, {1, 1, 1}), Error);
  EXPECT_THROW(systolic_gemm(16, 16, Dataflow::OS, {0, 1, 1}), Error);
  try {
    parse_dataflow("rs", "--dataflow");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'rs'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace edgellm::hwsim
