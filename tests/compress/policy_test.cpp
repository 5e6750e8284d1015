// Policy invariants: Eq. 1 bits, mean sparsity exactly P within bounds and ordered against
// sensitivity, random = permutation of luc, the literal and official variants by hand, and the
// budget knapsack against brute force and never above its target.
#include "compress/policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "compress/budget.h"
#include "util/error.h"
#include "util/rng.h"

namespace edgellm {
namespace {

std::vector<double> random_sens(size_t L, Rng& rng) {
  std::vector<double> s(L);
  for (double& v : s) v = std::exp(3 * rng.normal());  // spread over orders of magnitude
  return s;
}

TEST(Policy, LucBitsFollowEq1) {
  const std::vector<double> s{1, 2, 3, 10};  // mean 4: only the last is >= mean
  EXPECT_EQ(luc_bits(s, 3), (std::vector<int>{3, 3, 3, 4}));
  EXPECT_EQ(luc_bits({2, 2, 2}, 4), (std::vector<int>{5, 5, 5}));  // all at the mean: all +1
}

TEST(Policy, LucSparsityMeanBoundsAndOrder) {
  Rng rng(1);
  for (int trial = 0; trial < 200; ++trial) {
    const size_t L = 1 + rng.next() % 40;
    const auto s = random_sens(L, rng);
    const double P = 0.05 + 0.85 * rng.uniform(), lo = rng.uniform() < 0.5 ? 0 : 0.02,
                 hi = std::max(P, 0.95);
    std::vector<double> w;
    if (trial % 2) {
      w.resize(L);
      for (double& v : w) v = 1 + 10 * rng.uniform();
    }
    const auto p = luc_sparsity(s, P, lo, hi, w);
    ASSERT_NEAR(weighted_mean(p, w), P, 1e-9) << trial;
    for (size_t j = 0; j < L; ++j) {
      ASSERT_GE(p[j], lo);
      ASSERT_LE(p[j], hi);
      for (size_t k = 0; k < L; ++k)
        if (s[j] > s[k]) {
          ASSERT_LE(p[j], p[k] + 1e-12) << "more sensitive, more sparsity";
        }
    }
  }
  EXPECT_THROW(luc_sparsity({1, 2}, 0.97, 0, 0.95), Error);
}

TEST(Policy, MeanIsExactToOneInAMillionAtPaperSettings) {
  // LLaMA-7B-like: 32 layers, P = 0.5, bounds [0, 0.95].
  Rng rng(2);
  const auto s = random_sens(32, rng);
  const auto p = luc_sparsity(s, 0.5, 0, 0.95);
  EXPECT_NEAR(weighted_mean(p), 0.5, 1e-6);
}

TEST(Policy, OfficialAndLiteralByHand) {
  const std::vector<double> s{1, 3, 5};        // n = 0, 0.5, 1; 1 − n = 1, 0.5, 0; Σ = 1.5
  const auto off = official_sparsity(s, 0.4);  // P·L = 1.2
  EXPECT_NEAR(off[0], 0.8, 1e-12);
  EXPECT_NEAR(off[1], 0.4, 1e-12);
  EXPECT_NEAR(off[2], 0.0, 1e-12);
  std::vector<int> bad;
  const auto lit = luc_literal_sparsity({1, 1, 10}, 0.5, &bad);  // P·L·s/Σs = 1.5·s/12
  EXPECT_NEAR(lit[2], 1.25, 1e-12);
  EXPECT_EQ(bad, (std::vector<int>{2}));
}

TEST(Policy, RandomIsAPermutationOfLuc) {
  Rng rng(3);
  PolicyInputs in;
  in.s_quant = random_sens(16, rng);
  in.s_prune = random_sens(16, rng);
  in.B = 3;
  in.P = 0.5;
  in.seed = 42;
  const Allocation luc = allocate("luc", in), rnd = allocate("random", in);
  std::vector<std::pair<int, double>> a, b;
  for (size_t j = 0; j < 16; ++j) {
    a.emplace_back(luc.bits[j], luc.sparsity[j]);
    b.emplace_back(rnd.bits[j], rnd.sparsity[j]);
  }
  EXPECT_NE(a, b);  // seed 42 moves something
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  EXPECT_EQ(a, b);
  in.seed = 43;
  const Allocation rnd2 = allocate("random", in);
  EXPECT_FALSE(rnd2.bits == rnd.bits && rnd2.sparsity == rnd.sparsity);
  const Allocation uni = allocate("uniform", in);
  EXPECT_EQ(uni.bits, std::vector<int>(16, 3));
  EXPECT_THROW(allocate("lcu", in), Error);
}

// Brute force over every combination.
double brute_force(const std::vector<std::vector<BudgetChoice>>& items, int64_t target) {
  double best = INFINITY;
  std::vector<size_t> pick(items.size(), 0);
  std::function<void(size_t, int64_t, double)> go = [&](size_t i, int64_t b, double s) {
    if (b > target) return;
    if (i == items.size()) {
      best = std::min(best, s);
      return;
    }
    for (const auto& c : items[i]) go(i + 1, b + c.bytes, s + c.sensitivity);
  };
  go(0, 0, 0);
  return best;
}

TEST(Budget, OptimalAndNeverAboveTarget) {
  Rng rng(4);
  for (int trial = 0; trial < 100; ++trial) {
    const size_t L = 1 + rng.next() % 6, C = 1 + rng.next() % 5;
    std::vector<std::vector<BudgetChoice>> items(L);
    int64_t lo = 0, hi = 0;
    for (auto& it : items) {
      int64_t mn = INT64_MAX, mx = 0;
      for (size_t c = 0; c < C; ++c) {
        it.push_back({int64_t(100 + rng.next() % 1000), rng.uniform() * 10});
        mn = std::min(mn, it.back().bytes);
        mx = std::max(mx, it.back().bytes);
      }
      lo += mn;
      hi += mx;
    }
    const int64_t target = lo + int64_t(rng.uniform() * double(hi - lo));
    const BudgetResult r = budget_allocate(items, target);
    int64_t bytes = 0;
    double sens = 0;
    for (size_t i = 0; i < L; ++i) {
      bytes += items[i][r.choice[i]].bytes;
      sens += items[i][r.choice[i]].sensitivity;
    }
    ASSERT_LE(bytes, target);
    ASSERT_EQ(bytes, r.bytes);
    ASSERT_NEAR(sens, r.sensitivity, 1e-9);
    ASSERT_TRUE(r.exact);
    ASSERT_NEAR(sens, brute_force(items, target), 1e-9) << trial;
    EXPECT_THROW(budget_allocate(items, lo - 1), Error);
  }
}

TEST(Budget, MatchesOrBeatsLucAtEqualSize) {
  // Layers with convex-ish measured curves over (bits, sparsity) choices; luc's pick is one of
  // the candidates, so at luc's size the knapsack can only do as well or better.
  Rng rng(5);
  const size_t L = 24;
  PolicyInputs in;
  in.s_quant = random_sens(L, rng);
  in.s_prune = random_sens(L, rng);
  in.B = 3;
  in.P = 0.5;
  const Allocation luc = allocate("luc", in);
  const int64_t n_params = 1 << 20;
  auto bytes_of = [&](int bits, double p) {  // bitmask storage: kept codes + 1 bit per weight
    return int64_t(std::ceil(n_params * ((1 - p) * bits + 1) / 8));
  };
  auto sens_of = [&](size_t j, int bits, double p) {
    return in.s_quant[j] * std::pow(2.0, -2.0 * (bits - 3)) + in.s_prune[j] * p * p;
  };
  std::vector<std::vector<BudgetChoice>> items(L);
  int64_t luc_bytes = 0;
  double luc_sens = 0;
  for (size_t j = 0; j < L; ++j) {
    for (int b : {2, 3, 4, 5})
      for (double p = 0; p <= 0.9; p += 0.1) items[j].push_back({bytes_of(b, p), sens_of(j, b, p)});
    items[j].push_back(
        {bytes_of(luc.bits[j], luc.sparsity[j]), sens_of(j, luc.bits[j], luc.sparsity[j])});
    luc_bytes += items[j].back().bytes;
    luc_sens += items[j].back().sensitivity;
  }
  const BudgetResult r = budget_allocate(items, luc_bytes);
  EXPECT_LE(r.bytes, luc_bytes);
  EXPECT_LE(r.sensitivity, luc_sens + 1e-12);
  // Thinned frontiers stay feasible.
  const BudgetResult t = budget_allocate(items, luc_bytes, 64);
  EXPECT_LE(t.bytes, luc_bytes);
  EXPECT_GE(t.sensitivity, r.sensitivity - 1e-12);
}

}  // namespace
}  // namespace edgellm
