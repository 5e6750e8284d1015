// Systolic-array compute model, cycle-exact with Scale-Sim v2 in its zero-stall CALC mode
// (HWSIM.md §2; verified against every row of scalesim_vectors.csv).
//
// A GEMM multiplies an ifmap (M×K) by a filter (K×N) into an ofmap (M×N). Each dataflow keeps a
// different operand still in the R×C array and maps the other two dimensions onto it:
//   os (output stationary): Sr = M, Sc = N, T = K
//   ws (weight stationary): Sr = K, Sc = N, T = M
//   is (input stationary) : Sr = K, Sc = M, T = N
// The array is folded ceil(Sr/R)·ceil(Sc/C) times; each fold costs F cycles of fill, stream and
// drain, and Scale-Sim reports total = folds·F − 1.
#pragma once

#include <cstdint>
#include <string>

namespace edgellm::hwsim {

enum class Dataflow : uint8_t { OS, WS, IS };

const char* dataflow_name(Dataflow d);
// "os" | "ws" | "is" (case-insensitive); throws Error naming `what` and the value otherwise.
Dataflow parse_dataflow(const std::string& s, const std::string& what);

struct GemmShape {
  int64_t m = 0;  // rows of ifmap and ofmap (tokens for a linear layer)
  int64_t n = 0;  // columns of filter and ofmap (output features)
  int64_t k = 0;  // reduction length (input features)
};

struct SystolicResult {
  int64_t folds = 0;            // ceil(Sr/R)·ceil(Sc/C)
  int64_t cycles_per_fold = 0;  // F of HWSIM.md's table
  int64_t total_cycles = 0;     // folds·F − 1, as Scale-Sim prints it
  double overall_util_pct = 0;  // 100·M·N·K / (total·R·C)
  double mapping_eff_pct = 0;   // 100·Sr·Sc / (ceil(Sr/R)·R·ceil(Sc/C)·C)
  double compute_util_pct = 0;  // mapping_eff·T/D, D = F (os) or 2R+2C+T−3 (ws, is)
  // SRAM traffic in elements (Scale-Sim v2 counting; multiply by the element size for bytes).
  int64_t sram_ifmap_reads = 0;
  int64_t sram_filter_reads = 0;
  int64_t sram_ofmap_writes = 0;
};

// Cycles of one GEMM on an R×C array. Throws Error on non-positive sizes.
SystolicResult systolic_gemm(int rows, int cols, Dataflow df, const GemmShape& g);

// Flexible-precision MAC (bit-serial / bit-fusion style): a PE that does one 8×8-bit MAC per
// cycle does base_bits/ceil_g(bits) MACs per cycle with `bits`-bit weights, where ceil_g rounds
// up to the PE's bit granularity (1 bit: 4-bit → 2×, 5-bit → 1.6×; 2 bits: 5-bit → 6 → 1.33×).
// Bits at or above the base run at the base rate (never slower: wider weights are not used).
double mac_rate(int bits, int base_bits, int granularity_bits);

}  // namespace edgellm::hwsim
