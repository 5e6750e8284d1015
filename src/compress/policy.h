// Per-layer allocation policies (PAPER.md §1): pure functions from measured per-layer
// sensitivities to per-layer bit-widths and sparsities. L = number of layers (or of linears, for
// per-linear allocation: nothing here assumes which).
//
//   luc          bits b_j = B + 1[s_j >= mean s]  (Eq. 1); sparsity: the official inverse
//                min-max shape (less for more sensitive layers), then the Euclidean projection
//                onto {mean p = P, p_min <= p_j <= p_max}: p_j ← clamp(p_j + τ) with τ solved
//                exactly ("clamp and redistribute": a shift keeps the order, so a more sensitive
//                layer never gets more sparsity).
//   luc-literal  Eq. 2 as printed, p_j = P·L·s_j/Σs (MORE sparsity for MORE sensitive layers);
//                layers with p_j > 1 are reported infeasible, values left as computed.
//   official     the official code's inverse min-max: n = (s − min)/(max − min),
//                p_j = P·L·(1 − n_j)/Σ(1 − n_k), unclamped (the most sensitive layer gets 0).
//   uniform      b_j = B, p_j = P.
//   random       a seeded permutation of the luc allocation (the same multiset of (b, p) pairs).
//   budget       budget.h: measured curves + a size target.
// Means may be weighted (e.g. by parameter count): mean p = Σ w_j p_j / Σ w_j.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace edgellm {

struct Allocation {
  std::vector<int> bits;         // [L]
  std::vector<double> sparsity;  // [L]
  std::vector<int> infeasible;   // luc-literal: layers whose p_j > 1
};

std::vector<int> luc_bits(const std::vector<double>& s_quant, int B);

// weights empty = unweighted. Throws unless p_min <= P <= p_max.
std::vector<double> luc_sparsity(const std::vector<double>& s_prune, double P, double p_min,
                                 double p_max, const std::vector<double>& weights = {});
std::vector<double> official_sparsity(const std::vector<double>& s_prune, double P);
// Eq. 2 as printed; `infeasible` receives the layers with p_j > 1.
std::vector<double> luc_literal_sparsity(const std::vector<double>& s_prune, double P,
                                         std::vector<int>* infeasible);

// Shift-and-clamp projection: p_j ← clamp(p_j + τ, lo, hi) with the (weighted) mean exactly P.
std::vector<double> project_mean_box(const std::vector<double>& p, double P, double lo, double hi,
                                     const std::vector<double>& weights = {});

struct PolicyInputs {
  std::vector<double> s_quant;  // [L] sensitivity to B-bit quantization
  std::vector<double> s_prune;  // [L] sensitivity to pruning
  int B = 4;
  double P = 0.5;
  double p_min = 0.0, p_max = 0.95;
  std::vector<double> weights;  // [L] for a weighted mean sparsity (empty: plain mean)
  uint64_t seed = 0;            // random
};

// name: luc | luc-literal | official | uniform | random. Bits follow Eq. 1 for luc, random (its
// permutation), luc-literal and official; B for uniform.
Allocation allocate(const std::string& policy, const PolicyInputs& in);

// Σ w_j x_j / Σ w_j (plain mean when w is empty).
double weighted_mean(const std::vector<double>& x, const std::vector<double>& w = {});

}  // namespace edgellm
