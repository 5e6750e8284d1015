#include "compress/policy.h"

#include <algorithm>
#include <numeric>

#include "util/error.h"
#include "util/rng.h"

namespace edgellm {

namespace {

void check_sens(const std::vector<double>& s, const char* what) {
  if (s.empty()) fail("[policy] {}: no layers", what);
  for (size_t j = 0; j < s.size(); ++j)
    if (!(s[j] >= 0)) fail("[policy] {}: layer {} sensitivity {} is not >= 0", what, j, s[j]);
}

std::vector<double> weights_or_ones(const std::vector<double>& w, size_t L) {
  if (w.empty()) return std::vector<double>(L, 1.0);
  if (w.size() != L) fail("[policy] {} weights for {} layers", w.size(), L);
  for (size_t j = 0; j < L; ++j)
    if (!(w[j] > 0)) fail("[policy] layer {} weight {} is not positive", j, w[j]);
  return w;
}

}  // namespace

double weighted_mean(const std::vector<double>& x, const std::vector<double>& w) {
  const std::vector<double> ww = weights_or_ones(w, x.size());
  double s = 0, sw = 0;
  for (size_t j = 0; j < x.size(); ++j) {
    s += ww[j] * x[j];
    sw += ww[j];
  }
  return s / sw;
}

std::vector<int> luc_bits(const std::vector<double>& s_quant, int B) {
  check_sens(s_quant, "luc bits");
  const double mean = weighted_mean(s_quant);
  std::vector<int> b(s_quant.size());
  for (size_t j = 0; j < b.size(); ++j) b[j] = B + (s_quant[j] >= mean ? 1 : 0);
  return b;
}

std::vector<double> official_sparsity(const std::vector<double>& s_prune, double P) {
  check_sens(s_prune, "official sparsity");
  const auto [lo, hi] = std::minmax_element(s_prune.begin(), s_prune.end());
  const double L = double(s_prune.size());
  std::vector<double> inv(s_prune.size());
  for (size_t j = 0; j < inv.size(); ++j)
    inv[j] = *hi > *lo ? 1 - (s_prune[j] - *lo) / (*hi - *lo) : 1;
  const double sum = std::accumulate(inv.begin(), inv.end(), 0.0);
  for (double& v : inv) v = P * L * v / sum;
  return inv;
}

std::vector<double> luc_literal_sparsity(const std::vector<double>& s_prune, double P,
                                         std::vector<int>* infeasible) {
  check_sens(s_prune, "luc-literal sparsity");
  const double sum = std::accumulate(s_prune.begin(), s_prune.end(), 0.0);
  const double L = double(s_prune.size());
  std::vector<double> p(s_prune.size());
  for (size_t j = 0; j < p.size(); ++j) p[j] = sum > 0 ? P * L * s_prune[j] / sum : P;
  if (infeasible) {
    infeasible->clear();
    for (size_t j = 0; j < p.size(); ++j)
      if (p[j] > 1) infeasible->push_back(static_cast<int>(j));
  }
  return p;
}

std::vector<double> project_mean_box(const std::vector<double>& p, double P, double lo, double hi,
                                     const std::vector<double>& weights) {
  if (!(lo <= P && P <= hi))
    fail("[policy] mean sparsity {} outside the bounds [{}, {}]", P, lo, hi);
  const size_t L = p.size();
  const std::vector<double> w = weights_or_ones(weights, L);
  const double W = std::accumulate(w.begin(), w.end(), 0.0);
  auto at = [&](double tau, size_t j) { return std::clamp(p[j] + tau, lo, hi); };
  auto excess = [&](double tau) {
    double s = 0;
    for (size_t j = 0; j < L; ++j) s += w[j] * at(tau, j);
    return s - P * W;
  };
  // excess(τ) is continuous and non-decreasing: bisection brackets the root, then the exact τ
  // comes from the layers left strictly inside the box at that point.
  const auto [pmin, pmax] = std::minmax_element(p.begin(), p.end());
  double a = lo - *pmax, b = hi - *pmin;
  for (int it = 0; it < 200 && b - a > 1e-15; ++it) {
    const double m = 0.5 * (a + b);
    (excess(m) < 0 ? a : b) = m;
  }
  double tau = 0.5 * (a + b);
  double fixed = 0, wfree = 0, pfree = 0;
  for (size_t j = 0; j < L; ++j) {
    const double v = p[j] + tau;
    if (v <= lo || v >= hi) {
      fixed += w[j] * (v <= lo ? lo : hi);
    } else {
      wfree += w[j];
      pfree += w[j] * p[j];
    }
  }
  if (wfree > 0) tau = (P * W - fixed - pfree) / wfree;
  std::vector<double> out(L);
  for (size_t j = 0; j < L; ++j) out[j] = at(tau, j);
  return out;
}

std::vector<double> luc_sparsity(const std::vector<double>& s_prune, double P, double p_min,
                                 double p_max, const std::vector<double>& weights) {
  check_sens(s_prune, "luc sparsity");
  return project_mean_box(official_sparsity(s_prune, P), P, p_min, p_max, weights);
}

Allocation allocate(const std::string& policy, const PolicyInputs& in) {
  Allocation a;
  const size_t L = std::max(in.s_quant.size(), in.s_prune.size());
  if (policy == "uniform") {
    if (L == 0) fail("[policy] uniform: no layers");
    a.bits.assign(L, in.B);
    a.sparsity.assign(L, in.P);
    return a;
  }
  if (in.s_quant.size() != in.s_prune.size())
    fail("[policy] {}: {} quantization and {} pruning sensitivities", policy, in.s_quant.size(),
         in.s_prune.size());
  a.bits = luc_bits(in.s_quant, in.B);
  if (policy == "luc" || policy == "random") {
    a.sparsity = luc_sparsity(in.s_prune, in.P, in.p_min, in.p_max, in.weights);
    if (policy == "random") {  // Fisher–Yates over (bits, sparsity) pairs
      Rng rng(in.seed);
      for (size_t i = L - 1; i > 0; --i) {
        const size_t k = static_cast<size_t>(rng.uniform() * double(i + 1));
        std::swap(a.bits[i], a.bits[k]);
        std::swap(a.sparsity[i], a.sparsity[k]);
      }
    }
  } else if (policy == "luc-literal") {
    a.sparsity = luc_literal_sparsity(in.s_prune, in.P, &a.infeasible);
  } else if (policy == "official") {
    a.sparsity = official_sparsity(in.s_prune, in.P);
  } else {
    fail("[policy] '{}' unknown (luc, luc-literal, official, uniform, random, budget)", policy);
  }
  return a;
}

}  // namespace edgellm
