#include "hwsim/systolic.h"

#include <algorithm>
#include <cctype>

#include "util/error.h"

namespace edgellm::hwsim {

const char* dataflow_name(Dataflow d) {
  switch (d) {
    case Dataflow::OS:
      return "os";
    case Dataflow::WS:
      return "ws";
    case Dataflow::IS:
      return "is";
  }
  return "?";
}

Dataflow parse_dataflow(const std::string& s, const std::string& what) {
  std::string l = s;
  std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
  if (l == "os") return Dataflow::OS;
  if (l == "ws") return Dataflow::WS;
  if (l == "is") return Dataflow::IS;
  fail("[hwsim] {}: dataflow '{}' unknown (os, ws, is)", what, s);
}

namespace {
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
}  // namespace

SystolicResult systolic_gemm(int rows, int cols, Dataflow df, const GemmShape& g) {
  if (rows <= 0 || cols <= 0)
    fail("[hwsim] systolic array {}x{}: sizes must be positive", rows, cols);
  if (g.m <= 0 || g.n <= 0 || g.k <= 0)
    fail("[hwsim] GEMM M={} N={} K={}: sizes must be positive", g.m, g.n, g.k);
  const int64_t R = rows, C = cols;
  int64_t sr = 0, sc = 0, t = 0;
  switch (df) {
    case Dataflow::OS:
      sr = g.m, sc = g.n, t = g.k;
      break;
    case Dataflow::WS:
      sr = g.k, sc = g.n, t = g.m;
      break;
    case Dataflow::IS:
      sr = g.k, sc = g.m, t = g.n;
      break;
  }
  SystolicResult r;
  const int64_t row_folds = ceil_div(sr, R), col_folds = ceil_div(sc, C);
  r.folds = row_folds * col_folds;
  // os: operands enter skewed from two edges (R−1 and C−1 cycles of skew) while K streams.
  // ws/is: the stationary operand is first loaded row by row (R cycles), then T rows stream
  // through with R+C−2 cycles of skew.
  r.cycles_per_fold = df == Dataflow::OS ? t + R + C - 2 : 2 * R + C + t - 2;
  r.total_cycles = r.folds * r.cycles_per_fold - 1;
  const double macs = static_cast<double>(g.m) * g.n * g.k;
  r.overall_util_pct = 100.0 * macs / (static_cast<double>(r.total_cycles) * R * C);
  r.mapping_eff_pct = 100.0 * static_cast<double>(sr) * sc /
                      (static_cast<double>(row_folds) * R * static_cast<double>(col_folds) * C);
  const int64_t d = df == Dataflow::OS ? r.cycles_per_fold : 2 * R + 2 * C + t - 3;
  r.compute_util_pct = r.mapping_eff_pct * static_cast<double>(t) / static_cast<double>(d);
  switch (df) {
    case Dataflow::OS:
      r.sram_ifmap_reads = g.m * g.k * ceil_div(g.n, C);
      r.sram_filter_reads = g.k * g.n * ceil_div(g.m, R);
      r.sram_ofmap_writes = g.m * g.n;
      break;
    case Dataflow::WS:
      r.sram_ifmap_reads = g.m * g.k * ceil_div(g.n, C);
      r.sram_filter_reads = g.k * g.n;
      r.sram_ofmap_writes = g.m * g.n * ceil_div(g.k, R);
      break;
    case Dataflow::IS:
      r.sram_ifmap_reads = g.m * g.k;
      r.sram_filter_reads = g.k * g.n * ceil_div(g.m, C);
      r.sram_ofmap_writes = g.m * g.n * ceil_div(g.k, R);
      break;
  }
  return r;
}

double mac_rate(int bits, int base_bits, int granularity_bits) {
  if (base_bits <= 0 || granularity_bits <= 0)
    fail("[hwsim] precision: base_bits {} and granularity_bits {} must be positive", base_bits,
         granularity_bits);
  if (bits <= 0 || bits >= base_bits) return 1.0;
  const int rounded = static_cast<int>(ceil_div(bits, granularity_bits)) * granularity_bits;
  return static_cast<double>(base_bits) / std::min(rounded, base_bits);
}

}  // namespace edgellm::hwsim
