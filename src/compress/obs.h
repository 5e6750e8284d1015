// GPTQ (Frantar et al. 2023) and SparseGPT (Frantar & Alistarh 2023): one column-by-column
// optimal-brain-surgeon solver that minimises ‖XWᵀ − XŴᵀ‖² for a layer's calibration inputs X,
// through H = (2/n)·XᵀX (calib_stats.h). Steps (PAPER.md §6):
//   1. dead columns (H_ii = 0): H_ii = 1, W[:, i] = 0;
//   2. optional act-order: process columns by diag(H) descending;
//   3. dampening λ = percdamp·mean(diag H) (retried ×10 if H + λI is still not positive definite);
//   4. U = upper Cholesky factor of (H + λI)⁻¹ (one Eigen LLT of the reversed matrix and one
//      triangular solve, inverse_cholesky_upper);
// Steps 1-4 depend on H alone (obs_factor): linears that share an input (q/k/v, gate/up) and the
// candidates of a profile reuse one factor (CalibStats::obs_factor keeps it).
//   5. lazy blocks of `block` columns; inside a block, column i is pruned and/or quantized to q,
//      err = (w − q)/U_ii and the block's remaining columns get W[:, i:] −= err·U[i, i:]; after the
//      block the accumulated errors update every later column at once (one GEMM).
// Masks: none (GPTQ), a given mask (magnitude/Wanda + GPTQ), SparseGPT's unstructured block mask
// (score w²/U_ii², the lowest fraction of each block, over all rows of the block), or N:M chosen
// at every M-th column from the current, already-updated weights.
// Groups: the grid of a group is fitted on the current (updated) weights when its first column
// is reached; with act-order the grids are fitted up front ("static groups") so that a group is
// still a run of consecutive input columns, which the packed layout needs.
#pragma once

#include <cstdint>
#include <vector>

#include "compress/prune.h"
#include "packed/packed_weight.h"
#include "packed/weight_format.h"

namespace edgellm {

// Steps 1-4 for one Hessian: what obs_compress needs besides W. O(cols³) to compute.
struct ObsFactor {
  int64_t cols = 0;
  bool act_order = false;
  double percdamp = 0;
  std::vector<int64_t> perm;  // position -> original column
  std::vector<uint8_t> dead;  // per position: H_ii was 0
  std::vector<float> U;       // [cols, cols] column-major, upper triangular
  double damp = 0;            // λ actually used
};
ObsFactor obs_factor(const std::vector<double>& H, int64_t cols, bool act_order, double percdamp);
// H's entry from its calibration sum: H = 2·S/n for S = Σ x xᵀ over n rows (the one formula
// CalibStats::hessian() and obs_factor_of_sums share, so their factors agree bit for bit).
inline double hessian_entry(double s, int64_t n) { return 2.0 * s / double(n); }
// The same factor for H = 2·S/n given the calibration sums S, element by element, without
// forming H.
ObsFactor obs_factor_of_sums(const std::vector<double>& s, int64_t n, int64_t cols, bool act_order,
                             double percdamp);
// u[n, n] (column-major) = the upper Cholesky factor of A⁻¹ for a[n, n] (column-major,
// symmetric); false if A is not positive definite.
bool inverse_cholesky_upper(const double* a, int64_t n, float* u);

struct ObsOptions {
  WeightFormat fmt;  // grid (bits 16: no quantization, kept weights rounded to fp16)
  // Pruning: given mask ([rows, cols], 1 = kept), or SparseGPT's own choice per `sparsity`.
  const std::vector<uint8_t>* kept = nullptr;
  SparsitySpec sparsity;
  int block = 128;
  double percdamp = 0.01;
  bool act_order = false;
  // Steps 1-4 precomputed for this H, act_order and percdamp (else computed here).
  const ObsFactor* factor = nullptr;
};

struct ObsResult {
  QuantizedMatrix q;
  double damp = 0;        // λ actually used
  int64_t dead_cols = 0;  // inputs never active in calibration
};

// W[rows, cols] row-major; H[cols, cols] row-major (symmetric).
ObsResult obs_compress(const float* w, int64_t rows, int64_t cols, const std::vector<double>& H,
                       const ObsOptions& opt);

}  // namespace edgellm
