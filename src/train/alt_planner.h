// The memory planner of adaptive layer tuning (issue 9 item 7): given --mem-budget, pick the
// window, activation checkpointing, the logit chunk and the exits of an ALT run so that its
// memory plan fits, or refuse before anything is allocated with the smallest plan found.
//
// Each candidate is priced by the caller's `evaluate`, which is the trainer's own planning code
// (measuring arenas carved by the same code that later hands out the pointers; trainer.cpp), so
// the plan chosen is the plan allocated: there is no separate memory formula here to drift.
//
// Preference order (the first candidate that fits wins):
//   for the window m from the default (ceil(L/T), or --window) down to the smallest allowed:
//     recompute K = 0, 1, ..., m - 1 of the window's layers (K = m - 1 is checkpointing), each
//     with logit rows 128, then 32; last, checkpointing with 8
// Logit rows only trade speed (smaller head GEMMs) and recomputing a layer (partial
// checkpointing) saves one layer's activations for one more layer forward, so both come before
// shrinking the window, which changes what a step trains. When m drops
// below ceil(L/T) the exits are raised to T' = ceil(L/m), so that every layer still lies in some
// exit's window (ceil(L/T') <= m). Values the user fixed are kept: --window fixes m; --exits or
// --exit-layers fix the exits (m then shrinks no further than the widest gap between exits, so
// every layer stays covered); --checkpoint-activations fixes checkpointing on; --recompute-layers
// K leaves out the candidates that recompute fewer layers.
//
// Batch and gradient accumulation are not knobs: the engine runs one sequence at a time and adds
// the gradients, so they do not change the peak (only the step's token buffers, counted in
// Workspace when the data come from a corpus).
//
// The branch-mode prefix cache is priced at its cap. Unless the user set --prefix-cache-mb, its
// cap is lowered to what the budget leaves after the chosen configuration (whole MiB, possibly
// 0): the cache only saves time, so it never costs a knob above.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "train/memory.h"

namespace edgellm {

struct AltKnobs {
  std::vector<int> depths;  // exits
  int window = 0;           // m
  bool checkpoint = false;  // activation checkpointing (the window's m - 1 lowest layers)
  int64_t head_rows = 128;  // logit rows per chunk (EngineOptions::head_rows)
  int64_t prefix_cache_mb = 0;
  int recompute = 0;  // partial checkpointing: the window's lowest K layers (if not checkpoint)
  std::string describe() const;  // "exits [3,6,9,12], window 3, no checkpointing, ..."
};

struct AltPlanRequest {
  int n_layers = 0;
  AltKnobs start;  // the run's configuration without a budget (user's values and defaults)
  bool exits_fixed = false, window_fixed = false, checkpoint_fixed = false;
  int recompute_min = 0;           // --recompute-layers: no candidate recomputes fewer layers
  bool prefix_cache_used = false;  // branch mode with a cap > 0
  bool prefix_cache_fixed = false;
  int64_t budget = 0;  // bytes
};

struct AltPlanChoice {
  AltKnobs knobs;
  MemoryPlan plan;
  // Every candidate priced, in order, with its total; the last one is the choice.
  std::vector<std::pair<AltKnobs, size_t>> tried;
  std::string reason;  // why these knobs (for the printed plan and the JSON)
};

// Candidates in preference order (prefix cache left at start's value).
std::vector<AltKnobs> alt_candidates(const AltPlanRequest& r);
// The first candidate whose plan fits r.budget; throws naming the budget and printing the
// smallest plan found when none does.
AltPlanChoice choose_alt_plan(const AltPlanRequest& r,
                              const std::function<MemoryPlan(const AltKnobs&)>& evaluate);

}  // namespace edgellm
