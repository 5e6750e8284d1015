#include "train/exits.h"

#include <algorithm>
#include <sstream>

#include "util/error.h"
#include "util/rng.h"

namespace edgellm {

std::vector<int> exit_depths(int L, int T) {
  if (L <= 0) fail("[alt] model with {} layers", L);
  if (T <= 0 || T > L) fail("[alt] --exits {} must be within 1..{} (the model's layers)", T, L);
  std::vector<int> d(T);
  for (int i = 0; i < T; ++i) d[i] = static_cast<int>((int64_t{i + 1} * L + T - 1) / T);
  return d;
}

int exit_window(int L, int T) {
  if (T <= 0) fail("[alt] --exits {} must be positive", T);
  return (L + T - 1) / T;
}

std::vector<int> parse_exit_depths(const std::string& s, int L) {
  std::vector<int> d;
  // getline drops a trailing empty field; an empty item anywhere is an error.
  if (!s.empty() && s.back() == ',') fail("[alt] --exit-layers: empty item in '{}'", s);
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size())
      fail("[alt] --exit-layers: '{}' in '{}' is not a layer number", item, s);
    d.push_back(v);
  }
  check_exit_depths(d, L, "--exit-layers");
  return d;
}

void check_exit_depths(const std::vector<int>& d, int L, const std::string& what) {
  if (d.empty()) fail("[alt] {}: empty list", what);
  for (size_t i = 0; i < d.size(); ++i) {
    if (d[i] < 1 || d[i] > L)
      fail("[alt] {}: {} outside 1..{} (the model's layers)", what, d[i], L);
    if (i > 0 && d[i] <= d[i - 1])
      fail("[alt] {}: must be strictly increasing ({} after {})", what, d[i], d[i - 1]);
  }
}

ExitSchedule parse_exit_schedule(const std::string& s) {
  if (s == "random") return ExitSchedule::Random;
  if (s == "curriculum") return ExitSchedule::Curriculum;
  if (s == "round-robin") return ExitSchedule::RoundRobin;
  if (s == "weighted") return ExitSchedule::Weighted;
  fail("[alt] --schedule '{}': expected random, curriculum, round-robin or weighted", s);
}

const char* exit_schedule_name(ExitSchedule s) {
  switch (s) {
    case ExitSchedule::Random:
      return "random";
    case ExitSchedule::Curriculum:
      return "curriculum";
    case ExitSchedule::RoundRobin:
      return "round-robin";
    case ExitSchedule::Weighted:
      return "weighted";
  }
  return "?";
}

int ExitPicker::pick(int64_t step) const {
  const int T = static_cast<int>(depths.size());
  if (T == 0) fail("[alt] no exits to pick from");
  if (step < 0) fail("[alt] step {} is negative", step);
  // One fresh generator per step: the draw depends on (seed, step) only.
  Rng r(seed ^ (0x9e3779b97f4a7c15ull * static_cast<uint64_t>(step + 1)));
  switch (schedule) {
    case ExitSchedule::RoundRobin:
      return static_cast<int>(step % T);
    case ExitSchedule::Random:
      return static_cast<int>(r.uniform() * T);
    case ExitSchedule::Curriculum: {
      const int64_t S = std::max<int64_t>(total_steps, 1);
      const int k = static_cast<int>(std::min<int64_t>(T, 1 + step * T / S));
      return static_cast<int>(r.uniform() * k);
    }
    case ExitSchedule::Weighted: {
      std::vector<double> w = weights;
      if (w.empty())
        for (int d : depths) w.push_back(d);
      if (static_cast<int>(w.size()) != T)
        fail("[alt] --exit-weights has {} values for {} exits", w.size(), T);
      double sum = 0;
      for (double x : w) {
        if (!(x >= 0)) fail("[alt] --exit-weights: weight {} must be non-negative", x);
        sum += x;
      }
      if (sum <= 0) fail("[alt] --exit-weights: all weights are zero");
      double u = r.uniform() * sum;
      for (int i = 0; i < T; ++i) {
        if (u < w[i]) return i;
        u -= w[i];
      }
      for (int i = T - 1; i >= 0; --i)  // rounding: the last exit with weight
        if (w[i] > 0) return i;
    }
  }
  return 0;
}

}  // namespace edgellm
