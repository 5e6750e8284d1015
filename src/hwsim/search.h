// Schedule search (HWSIM.md §3, FlexGen's policy search adapted to tuning): over micro-batch
// size, micro-batches per block (row-by-row = 1, column-by-column > 1), SRAM set aside for
// resident tensors, and the placement fractions of weights / saved activations / LoRA state over
// SRAM / DRAM / SSD, minimise the expected iteration time under the capacity limits.
// For adaptive layer tuning the exit is drawn uniformly per iteration, so one schedule is chosen
// for all exits and its time is the mean over exits.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <vector>

#include "hwsim/cost_model.h"

namespace edgellm::hwsim {

struct SearchSpace {
  std::vector<int> micro_batches;      // empty: 1, 2, 3, 4, then doubling, dividing the iteration
  std::vector<int> batches_per_block;  // empty: every nb with micro_batch·nb dividing it
  Overlap overlap = Overlap::Paper;
  int grid = 20;              // SSD fractions are searched in steps of 1/grid
  bool sram_resident = true;  // also try keeping half the SRAM for one resident class
};

// The exits an iteration may stop at: {L} for lora/partial; for alt, `exits` as given or, when
// empty, the paper's ceil((i+1)·L/T) for T = L / window exits.
std::vector<int> iteration_exits(const ModelConfig& m, const TuneConfig& t, std::vector<int> exits);

struct ExitCost {
  int exit = 0;
  IterationCost cost;
};

struct SearchResult {
  bool found = false;
  Schedule best;
  double seconds = 0;               // expected iteration time of `best`
  std::vector<ExitCost> per_exit;   // the best schedule evaluated at every exit
  double best_row_seconds = -1;     // best row-by-row schedule (nb = 1); -1 if none feasible
  double best_column_seconds = -1;  // best column-by-column schedule (nb > 1)
  double tuning_bytes = 0;          // saved activations + trained LoRA state, peak over exits
  double weights_bytes = 0;         // frozen weights at rest
  long long evaluated = 0;          // schedules evaluated
  double search_ms = 0;             // wall time of the search
  nlohmann::json to_json(bool with_blocks = true) const;
};

SearchResult search(const ModelConfig& m, const TuneConfig& t, const std::vector<int>& exits,
                    const Device& dev, const Workload& wl, const SearchSpace& space);

// Evaluates one given schedule at every exit (for `sim eval`); infeasible placements come back
// with feasible = false and the reason.
SearchResult evaluate_schedule(const ModelConfig& m, const TuneConfig& t,
                               const std::vector<int>& exits, const Device& dev, const Workload& wl,
                               const Schedule& s);

nlohmann::json schedule_json(const Schedule& s);

}  // namespace edgellm::hwsim
