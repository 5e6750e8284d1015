// The `budget` policy (beyond the paper): given, for every item (a layer or a linear), a list of
// candidate choices — e.g. (bits, sparsity) — each with its exact stored bytes and its measured
// sensitivity, choose one per item to minimise the summed sensitivity with total bytes <= target.
//
// A multiple-choice knapsack, solved by dynamic programming over Pareto frontiers: after item i
// the frontier holds every (bytes, sensitivity) total that no other total beats in both; the
// answer is the cheapest-sensitivity point within the target. This is exact while frontiers stay
// below `max_frontier` points; past that a frontier is thinned to evenly spaced points (always
// keeping its cheapest one), which can lose optimality (reported) but never feasibility. The
// result never exceeds the target; an unreachable target throws, naming the smallest size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace edgellm {

struct BudgetChoice {
  int64_t bytes = 0;
  double sensitivity = 0;
};

struct BudgetResult {
  std::vector<int> choice;  // [items] index into that item's choices
  int64_t bytes = 0;
  double sensitivity = 0;
  bool exact = true;  // false if a frontier had to be thinned
};

BudgetResult budget_allocate(const std::vector<std::vector<BudgetChoice>>& items,
                             int64_t target_bytes, size_t max_frontier = 1 << 16);

}  // namespace edgellm
