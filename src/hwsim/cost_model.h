// Memory-hierarchy cost model (HWSIM.md §3, PAPER.md §4). One tuning iteration is a traversal of
// a (micro-batch × layer) grid; a *block* is one layer (or the exit head, or the optimizer step)
// for one group of nb micro-batches in one phase. With loads, stores and compute overlapped,
//   T_block = max(r_to_sram, w_to_dram, r_to_dram, w_to_ssd, T_comp)          (paper, 5-way max)
//   T_block = max(r_to_sram + r_to_dram, w_to_dram + w_to_ssd, T_comp)        (FlexGen: the read
//             chain and the write chain each share one path)
//   T_block = sum of the five terms                                            (no overlap)
// where each transfer term is bytes / bandwidth under the placement fractions of weights,
// saved activations and LoRA state ("gradients") over SRAM / DRAM / SSD.
#pragma once

#include <array>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "hwsim/device.h"
#include "hwsim/trace.h"

namespace edgellm::hwsim {

enum class Overlap : uint8_t { Paper, FlexGen, None };
const char* overlap_name(Overlap o);
Overlap parse_overlap(const std::string& s);  // "paper" | "flexgen" | "none"

enum Level : int { kSram = 0, kDram = 1, kSsd = 2 };

// Fractions of one data class over {SRAM, DRAM, SSD}; they sum to 1.
using Fractions = std::array<double, 3>;

struct Placement {
  Fractions weights{0, 1, 0};  // frozen base weights (whole model at rest)
  Fractions acts{0, 1, 0};     // activations saved for backward
  Fractions grads{0, 1, 0};    // LoRA parameters, gradients and AdamW moments
  void validate() const;       // each triple in [0,1], summing to 1 (throws naming the class)
};

struct Schedule {
  int micro_batch = 1;        // sequences per micro-batch (the GEMMs' batch)
  int batches_per_block = 1;  // nb: micro-batches run through a layer before moving on
                              // (1 = row-by-row; > 1 = column-by-column within a block)
  Overlap overlap = Overlap::Paper;
  double sram_resident_share = 0;  // share of usable SRAM kept for resident tensors; the rest
                                   // holds GEMM tiles
  Placement place;
  const char* order() const { return batches_per_block == 1 ? "row-by-row" : "column-by-column"; }
};

// Per-block quantities that do not depend on the placement: they depend on the device, the
// micro-batch (GEMM shapes) and the SRAM left for tiles. Bytes per micro-batch.
struct BlockCoeffs {
  std::string name;  // "L3.fwd", "head.bwd", "opt.update"
  int layer = 0;
  Phase phase = Phase::Forward;
  double comp_s = 0;                // seconds on the array + vector unit
  double weight = 0;                // frozen weight bytes read
  double saved_w = 0, saved_r = 0;  // saved-activation bytes written / read
  double state_r = 0, state_w = 0;  // LoRA state bytes read / written
  double dram_r = 0, dram_w = 0;    // transient + tile re-fetch bytes DRAM->SRAM / SRAM->DRAM
  double transient_peak = 0;        // largest op working set kept in DRAM (bytes)
  double macs = 0;                  // MACs (for utilisation)
};

// Array + tiling model of one trace: per-block coefficients. `tile_sram_bytes` is the SRAM
// available for GEMM tiles.
std::vector<BlockCoeffs> block_coeffs(const Trace& tr, const Device& dev, double tile_sram_bytes);

// DRAM<->SRAM traffic of one GEMM (bytes) under an output-tiled loop nest that fits
// double-buffered A and B tiles plus an fp32 output tile in `sram_bytes`: the tile sizes are
// chosen to minimise traffic (more SRAM can only lower it).
double gemm_dram_traffic(const Op& op, const Device& dev, double sram_bytes);
// Cycles of one op on the device, precision included (GEMMs through the systolic model,
// element-wise ops on the vector unit).
double op_cycles(const Op& op, const Device& dev);

struct BlockCost {
  std::string name;
  double r_to_sram = 0, w_to_dram = 0, r_to_dram = 0, w_to_ssd = 0, comp = 0;  // seconds
  double time = 0;           // combined under the overlap model
  const char* binding = "";  // the term that sets `time`
  double repeat = 1;         // times this block runs per iteration
};

struct MemoryUse {
  double sram = 0, dram = 0, ssd = 0;              // bytes at peak, each level
  double sram_cap = 0, dram_cap = 0, ssd_cap = 0;  // usable capacity α·size
};

struct Workload {
  int samples_per_iteration = 16;  // sequences per optimizer step (paper code: 1 × accum 16)
};

struct IterationCost {
  bool feasible = false;
  std::string infeasible_reason;
  double seconds = 0;  // one iteration (all micro-batches + the update)
  MemoryUse mem;
  std::vector<BlockCost> blocks;  // one micro-batch group's blocks plus the update
  double groups = 0;              // micro-batch groups per iteration
  double saved_held = 0;          // saved-activation bytes held at peak
  nlohmann::json to_json() const;
};

// Evaluates a schedule on precomputed coefficients (trace for `sched.micro_batch` sequences).
IterationCost evaluate(const Trace& tr, const std::vector<BlockCoeffs>& coeffs, const Device& dev,
                       const Schedule& sched, const Workload& wl);
// Convenience: builds the coefficients itself.
IterationCost evaluate(const Trace& tr, const Device& dev, const Schedule& sched,
                       const Workload& wl);

// The three overlap models on the five per-block terms; `binding` names the largest term.
double combine(Overlap o, double r_to_sram, double w_to_dram, double r_to_dram, double w_to_ssd,
               double comp, const char** binding);

}  // namespace edgellm::hwsim
