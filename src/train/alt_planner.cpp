#include "train/alt_planner.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "train/exits.h"
#include "util/error.h"

namespace edgellm {

namespace {

// The widest run of layers between consecutive exits (from the input): the smallest window that
// still puts every layer below the deepest exit in some exit's window.
int widest_gap(const std::vector<int>& depths) {
  int prev = 0, gap = 1;
  for (int d : depths) {
    gap = std::max(gap, d - prev);
    prev = d;
  }
  return gap;
}

double mib(size_t b) { return b / 1048576.0; }

}  // namespace

std::string AltKnobs::describe() const {
  const std::string ck = checkpoint ? "checkpointing"
                         : recompute > 0
                             ? fmt::format("{} of {} window layers recomputed", recompute, window)
                             : "no checkpointing";
  std::string s = fmt::format("exits [{}], window {}, {}, logit rows {}", fmt::join(depths, ","),
                              window, ck, head_rows);
  if (prefix_cache_mb > 0) s += fmt::format(", prefix cache {} MiB", prefix_cache_mb);
  return s;
}

std::vector<AltKnobs> alt_candidates(const AltPlanRequest& r) {
  const int L = r.n_layers;
  const AltKnobs& s = r.start;
  int m_min = 1;
  if (r.window_fixed)
    m_min = s.window;
  else if (r.exits_fixed)
    m_min = std::min(s.window, widest_gap(s.depths));
  std::vector<AltKnobs> out;
  for (int m = s.window; m >= m_min; --m) {
    AltKnobs k = s;
    k.window = m;
    // Below ceil(L/T) every layer stays covered only with more exits: T' = ceil(L/m).
    if (!r.exits_fixed && !r.window_fixed && m < widest_gap(s.depths))
      k.depths = exit_depths(L, (L + m - 1) / m);
    // K = m - 1 recomputes is checkpointing (the engine never recomputes the top layer).
    auto add = [&](int recompute, int64_t rows) {
      const bool ckpt = r.checkpoint_fixed || (m > 1 && recompute >= m - 1);
      if (!ckpt && recompute < r.recompute_min) return;
      k.checkpoint = ckpt;
      k.recompute = ckpt ? 0 : recompute;
      k.head_rows = rows;
      out.push_back(k);
    };
    if (!r.checkpoint_fixed)
      for (int recompute = 0; recompute < m - 1; ++recompute)
        for (const int64_t rows : {128, 32}) add(recompute, rows);
    for (const int64_t rows : {128, 32, 8}) add(m - 1, rows);
  }
  return out;
}

AltPlanChoice choose_alt_plan(const AltPlanRequest& r,
                              const std::function<MemoryPlan(const AltKnobs&)>& evaluate) {
  EDGELLM_CHECK(r.budget > 0, "choose_alt_plan without a budget");
  const size_t budget = static_cast<size_t>(r.budget);
  // A cache the planner may size is priced at 0 while choosing the knobs, then gets the rest.
  const bool size_cache = r.prefix_cache_used && !r.prefix_cache_fixed;
  AltPlanChoice c;
  std::vector<AltKnobs> cands = alt_candidates(r);
  MemoryPlan smallest;
  AltKnobs smallest_k;
  for (AltKnobs& k : cands) {
    if (size_cache) k.prefix_cache_mb = 0;
    const MemoryPlan p = evaluate(k);
    c.tried.emplace_back(k, p.total());
    if (c.tried.size() == 1 || p.total() < smallest.total()) {
      smallest = p;
      smallest_k = k;
    }
    if (p.total() > budget) continue;
    c.knobs = k;
    c.plan = p;
    break;
  }
  if (c.knobs.depths.empty())
    fail(
        "[train] --mem-budget {:.1f} MiB: no adaptive-layer-tuning configuration fits ({} tried "
        "from '{}' down); the smallest plan found ({}) needs {:.1f} MiB:\n{}",
        mib(budget), c.tried.size(), cands.front().describe(), smallest_k.describe(),
        mib(smallest.total()), smallest.table());
  if (size_cache) {
    const int64_t left_mb = static_cast<int64_t>((budget - c.plan.total()) >> 20);
    c.knobs.prefix_cache_mb = std::min(r.start.prefix_cache_mb, left_mb);
    c.plan = evaluate(c.knobs);
    EDGELLM_CHECK(c.plan.total() <= budget, "prefix cache sized past the budget");
    c.tried.back().first = c.knobs;
    c.tried.back().second = c.plan.total();
  }
  const AltKnobs& k = c.knobs;
  std::string why;
  if (c.tried.size() == 1) {
    why = "the run's configuration fits as it is";
  } else {
    why = fmt::format("candidate {} of the preference order; the ones before it need",
                      c.tried.size());
    for (size_t i = 0; i + 1 < c.tried.size(); ++i)
      why += fmt::format("{} {:.1f}", i ? "," : "", mib(c.tried[i].second));
    why += fmt::format(" MiB > {:.1f} MiB", mib(budget));
  }
  if (k.depths != r.start.depths)
    why += fmt::format("; exits raised to {} so that a window of {} covers every layer",
                       k.depths.size(), k.window);
  if (size_cache && k.prefix_cache_mb < r.start.prefix_cache_mb)
    why +=
        fmt::format("; prefix cache capped at {} MiB (what the budget leaves)", k.prefix_cache_mb);
  c.reason = why;
  return c;
}

}  // namespace edgellm
