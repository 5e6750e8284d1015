// What the data-aware compressors need to know about a linear's inputs X[n, in] (calibration
// rows taken from a tap): S = Σ x xᵀ and n. GPTQ and SparseGPT minimise ‖XWᵀ − XŴᵀ‖² through
// its Hessian H = (2/n)·S; Wanda scores with the column norms ‖X_j‖₂ = sqrt(S_jj).
// Collected streaming (add() as calibration batches pass): each batch's XᵀX by the fp32 sgemm
// (as GPTQ's reference accumulates it), the running sum in double.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace edgellm {

struct ObsFactor;  // compress/obs.h

class CalibStats {
 public:
  explicit CalibStats(int64_t in);
  // From an already-computed Hessian H[in, in] = (2/n)·S of n rows (e.g. read back from disk).
  static CalibStats from_hessian(const std::vector<double>& H, int64_t in, int64_t n);
  // Column norms only (enough for Wanda; GPTQ/SparseGPT will refuse).
  static CalibStats from_col_norms(const std::vector<double>& norms);

  void add(const float* x, int64_t n);  // x[n, in], row-major
  void merge(const CalibStats& o);      // statistics of the union of both row sets

  int64_t in() const { return in_; }
  int64_t n() const { return n_; }
  bool has_hessian() const { return !s_.empty(); }
  std::vector<double> hessian() const;    // [in, in] (2/n)·S
  std::vector<double> col_norms() const;  // [in] ‖X_j‖₂
  // GPTQ / SparseGPT's factor of this Hessian (obs.h obs_factor), computed on first use and kept
  // until the statistics change: the linears sharing these inputs (q/k/v, gate/up) and every
  // candidate of a profile then pay its O(in³) once. Not thread-safe.
  const ObsFactor& obs_factor(bool act_order, double percdamp) const;

 private:
  void require_hessian() const;  // throws unless Hessian sums over at least one row are held
  CalibStats() = default;
  int64_t in_ = 0, n_ = 0;
  std::vector<double> s_;      // [in, in] Σ x xᵀ (empty: norms only)
  std::vector<double> norms_;  // set only by from_col_norms
  mutable std::vector<std::shared_ptr<const ObsFactor>> factors_;
  std::vector<float> batch_;  // add()'s [in, in] fp32 product of one batch, reused
};

}  // namespace edgellm
