#include "compress/calib_stats.h"

#include <algorithm>
#include <cmath>

#include "compress/obs.h"
#include "kernels/matmul.h"
#include "util/error.h"

namespace edgellm {

CalibStats::CalibStats(int64_t in) : in_(in), s_(static_cast<size_t>(in * in), 0.0) {
  if (in <= 0) fail("[calib] input width {} is not positive", in);
}

CalibStats CalibStats::from_hessian(const std::vector<double>& H, int64_t in, int64_t n) {
  if (static_cast<int64_t>(H.size()) != in * in || n <= 0)
    fail("[calib] Hessian of {} values for width {} and {} rows", H.size(), in, n);
  CalibStats c(in);
  c.n_ = n;
  for (size_t i = 0; i < H.size(); ++i) c.s_[i] = H[i] * double(n) / 2.0;
  return c;
}

CalibStats CalibStats::from_col_norms(const std::vector<double>& norms) {
  CalibStats c;
  c.in_ = static_cast<int64_t>(norms.size());
  c.norms_ = norms;
  return c;
}

void CalibStats::add(const float* x, int64_t n) {
  if (!has_hessian()) fail("[calib] add() on statistics built from column norms only");
  // Batches of rows: XbᵀXb by the fp32 sgemm (a 256-row sum in fp32, ~1e-7 relative), added
  // into the double sum. The Eigen double product it replaces was most of a TinyLlama profile
  // (8192 × 5632² for down_proj alone: 520 GFLOP in double per layer).
  constexpr int64_t kRows = 256;
  std::vector<float>& batch = batch_;  // kept: add() runs once per calibration window
  batch.resize(static_cast<size_t>(in_ * in_));
  for (int64_t r0 = 0; r0 < n; r0 += kRows) {
    const int64_t nr = std::min(kRows, n - r0);
    sgemm(true, false, in_, in_, nr, 1.f, x + r0 * in_, in_, x + r0 * in_, in_, 0.f, batch.data(),
          in_);
    for (size_t i = 0; i < s_.size(); ++i) s_[i] += batch[i];
  }
  n_ += n;
  factors_.clear();
}

void CalibStats::merge(const CalibStats& o) {
  if (o.in_ != in_ || !has_hessian() || !o.has_hessian())
    fail("[calib] merge of widths {} and {} (or of norm-only statistics)", in_, o.in_);
  for (size_t i = 0; i < s_.size(); ++i) s_[i] += o.s_[i];
  n_ += o.n_;
  factors_.clear();
}

const ObsFactor& CalibStats::obs_factor(bool act_order, double percdamp) const {
  for (const auto& f : factors_)
    if (f->act_order == act_order && f->percdamp == percdamp) return *f;
  require_hessian();
  factors_.push_back(
      std::make_shared<const ObsFactor>(obs_factor_of_sums(s_, n_, in_, act_order, percdamp)));
  return *factors_.back();
}

void CalibStats::require_hessian() const {
  if (!has_hessian()) fail("[calib] no Hessian: statistics hold column norms only");
  if (n_ == 0) fail("[calib] no calibration rows were added");
}

std::vector<double> CalibStats::hessian() const {
  require_hessian();
  std::vector<double> H(s_.size());
  for (size_t i = 0; i < s_.size(); ++i) H[i] = hessian_entry(s_[i], n_);
  return H;
}

std::vector<double> CalibStats::col_norms() const {
  if (!has_hessian()) return norms_;
  std::vector<double> v(static_cast<size_t>(in_));
  for (int64_t j = 0; j < in_; ++j) v[j] = std::sqrt(s_[j * in_ + j]);
  return v;
}

}  // namespace edgellm
