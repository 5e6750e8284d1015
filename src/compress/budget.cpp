#include "compress/budget.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace edgellm {

namespace {

struct Point {
  int64_t bytes;
  double sens;
  int32_t prev;    // index in the previous frontier
  int32_t choice;  // choice of this item
};

}  // namespace

BudgetResult budget_allocate(const std::vector<std::vector<BudgetChoice>>& items,
                             int64_t target_bytes, size_t max_frontier) {
  if (items.empty()) fail("[budget] no items to allocate");
  int64_t min_bytes = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].empty()) fail("[budget] item {} has no choices", i);
    int64_t m = items[i][0].bytes;
    for (const auto& c : items[i]) {
      if (c.bytes < 0 || !std::isfinite(c.sensitivity))
        fail("[budget] item {}: choice with {} bytes, sensitivity {}", i, c.bytes, c.sensitivity);
      m = std::min(m, c.bytes);
    }
    min_bytes += m;
  }
  if (min_bytes > target_bytes)
    fail("[budget] target {} bytes is below the smallest possible size {} bytes", target_bytes,
         min_bytes);
  // Cheapest possible bytes of items after i: a partial total that cannot fit them is dropped.
  std::vector<int64_t> rest(items.size() + 1, 0);
  for (size_t i = items.size(); i-- > 0;) {
    int64_t m = items[i][0].bytes;
    for (const auto& c : items[i]) m = std::min(m, c.bytes);
    rest[i] = rest[i + 1] + m;
  }

  BudgetResult res;
  std::vector<std::vector<Point>> fronts(items.size() + 1);
  fronts[0] = {{0, 0.0, -1, -1}};
  std::vector<Point> cand;
  for (size_t i = 0; i < items.size(); ++i) {
    cand.clear();
    const auto& prev = fronts[i];
    for (size_t k = 0; k < prev.size(); ++k)
      for (size_t c = 0; c < items[i].size(); ++c) {
        const int64_t b = prev[k].bytes + items[i][c].bytes;
        if (b + rest[i + 1] > target_bytes) continue;
        cand.push_back({b, prev[k].sens + items[i][c].sensitivity, int32_t(k), int32_t(c)});
      }
    std::sort(cand.begin(), cand.end(), [](const Point& a, const Point& b) {
      return a.bytes != b.bytes ? a.bytes < b.bytes : a.sens < b.sens;
    });
    auto& f = fronts[i + 1];
    for (const Point& p : cand)  // keep strictly improving sensitivity as bytes grow
      if (f.empty() || p.sens < f.back().sens) f.push_back(p);
    if (f.size() > max_frontier) {
      std::vector<Point> thin;
      const double step = double(f.size() - 1) / double(max_frontier - 1);
      for (size_t t = 0; t < max_frontier; ++t)
        thin.push_back(f[static_cast<size_t>(std::llround(t * step))]);
      f.swap(thin);
      res.exact = false;
    }
  }
  const auto& last = fronts.back();
  EDGELLM_CHECK(!last.empty(), "budget frontier empty though {} <= {}", min_bytes, target_bytes);
  // Sensitivity strictly decreases along a frontier: the last point is the best that fits.
  int32_t k = static_cast<int32_t>(last.size() - 1);
  res.bytes = last[k].bytes;
  res.sensitivity = last[k].sens;
  res.choice.assign(items.size(), 0);
  for (size_t i = items.size(); i-- > 0;) {
    const Point& p = fronts[i + 1][k];
    res.choice[i] = p.choice;
    k = p.prev;
  }
  return res;
}

}  // namespace edgellm
