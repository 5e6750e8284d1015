#include "compress/obs.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <numeric>

#include "compress/rtn.h"
#include "tensor/dtype.h"
#include "util/error.h"

namespace edgellm {

namespace {

using MatF = Eigen::MatrixXf;  // column-major: a column of W is contiguous
using MatD = Eigen::MatrixXd;

}  // namespace

bool inverse_cholesky_upper(const double* a, int64_t n, float* u) {
  // With J the reversal permutation and J·A·J = R·Rᵀ (R lower), A⁻¹ = (R⁻¹J)ᵀ(R⁻¹J), so
  // U = J·R⁻¹·J: upper triangular with a positive diagonal, hence A⁻¹'s Cholesky factor. One
  // Cholesky and one triangular solve, where inverting A and factoring the inverse took ~2x the
  // flops (the O(n³) part of GPTQ / SparseGPT at n = 5632).
  const Eigen::Map<const MatD> A(a, n, n);
  Eigen::LLT<MatD> llt(A.reverse());
  if (llt.info() != Eigen::Success) return false;
  MatD Rinv = MatD::Identity(n, n);
  llt.matrixL().solveInPlace(Rinv);
  Eigen::Map<MatF>(u, n, n) = Rinv.reverse().cast<float>();
  return true;
}

ObsFactor obs_factor(const std::vector<double>& H, int64_t cols, bool act_order, double percdamp) {
  if (static_cast<int64_t>(H.size()) != cols * cols)
    fail("[obs] Hessian of {} values for {} input columns", H.size(), cols);
  ObsFactor f;
  f.cols = cols;
  f.act_order = act_order;
  f.percdamp = percdamp;
  // Column order: identity, or act-order (diag H descending, stable).
  f.perm.resize(static_cast<size_t>(cols));
  std::iota(f.perm.begin(), f.perm.end(), 0);
  if (act_order)
    std::stable_sort(f.perm.begin(), f.perm.end(),
                     [&](int64_t a, int64_t b) { return H[a * cols + a] > H[b * cols + b]; });
  MatD Hp(cols, cols);
  for (int64_t j = 0; j < cols; ++j)
    for (int64_t k = 0; k < cols; ++k) Hp(k, j) = H[f.perm[k] * cols + f.perm[j]];
  f.dead.assign(static_cast<size_t>(cols), 0);
  for (int64_t j = 0; j < cols; ++j)
    if (Hp(j, j) == 0) {
      Hp(j, j) = 1;
      f.dead[j] = 1;
    }
  // U = upper Cholesky factor of (H + λI)⁻¹, so (H + λI)⁻¹ = UᵀU.
  double damp = percdamp * Hp.diagonal().mean();
  f.U.resize(static_cast<size_t>(cols * cols));
  for (int attempt = 0;; ++attempt) {
    MatD Hd = Hp;
    Hd.diagonal().array() += damp;
    if (inverse_cholesky_upper(Hd.data(), cols, f.U.data())) break;
    if (attempt == 4)
      fail("[obs] H + {}·I is not positive definite ({} columns, percdamp {})", damp, cols,
           percdamp);
    damp = damp > 0 ? damp * 10 : 1e-8;
  }
  f.damp = damp;
  return f;
}

ObsResult obs_compress(const float* w, int64_t rows, int64_t cols, const std::vector<double>& H,
                       const ObsOptions& opt) {
  const WeightFormat& f = opt.fmt;
  f.validate("obs");
  if (!opt.factor && static_cast<int64_t>(H.size()) != cols * cols)
    fail("[obs] Hessian of {} values for {} input columns", H.size(), cols);
  if (opt.kept && opt.sparsity.any()) fail("[obs] both a given mask and a sparsity to choose");
  if (opt.kept && static_cast<int64_t>(opt.kept->size()) != rows * cols)
    fail("[obs] mask of {} for {}x{}", opt.kept->size(), rows, cols);
  if (opt.block <= 0) fail("[obs] block {} is not positive", opt.block);
  const SparsitySpec& sp = opt.sparsity;
  if (sp.nm() && opt.act_order)
    fail("[obs] act-order with N:M {}:{}: the pattern is over consecutive input columns", sp.n,
         sp.m);
  if (sp.nm() && opt.block % sp.m != 0)
    fail("[obs] block {} is not a multiple of M = {}", opt.block, sp.m);
  const bool quant = f.quantized();
  const int64_t ng = f.n_groups(cols), gc = f.group_cols(cols);

  ObsResult res;
  ObsFactor local;
  const ObsFactor* fac = opt.factor;
  if (fac &&
      (fac->cols != cols || fac->act_order != opt.act_order || fac->percdamp != opt.percdamp))
    fail("[obs] a factor for {} columns (act-order {}, percdamp {}) given for {} ({}, {})",
         fac->cols, fac->act_order, fac->percdamp, cols, opt.act_order, opt.percdamp);
  if (!fac) {
    local = obs_factor(H, cols, opt.act_order, opt.percdamp);
    fac = &local;
  }
  const std::vector<int64_t>& perm = fac->perm;
  std::vector<int64_t> where(static_cast<size_t>(cols));  // original column -> position
  for (int64_t j = 0; j < cols; ++j) where[perm[j]] = j;
  res.damp = fac->damp;

  MatF W(rows, cols);
  for (int64_t j = 0; j < cols; ++j) {
    if (fac->dead[j]) {
      W.col(j).setZero();
      ++res.dead_cols;
      continue;
    }
    for (int64_t r = 0; r < rows; ++r) W(r, j) = w[r * cols + perm[j]];
  }
  // pruned[j*rows + r]: weight (r, perm[j]) is pruned (given, or decided so far).
  std::vector<uint8_t> pruned(static_cast<size_t>(rows * cols), 0);
  if (opt.kept)
    for (int64_t j = 0; j < cols; ++j)
      for (int64_t r = 0; r < rows; ++r) pruned[j * rows + r] = !(*opt.kept)[r * cols + perm[j]];
  const Eigen::Map<const MatF> U(fac->U.data(), cols, cols);

  QuantizedMatrix& q = res.q;
  q.fmt = f;
  q.rows = rows;
  q.cols = cols;
  q.codes.assign(static_cast<size_t>(rows * cols), 0);
  q.scales.assign(static_cast<size_t>(rows * ng), 0.f);
  if (quant && f.scheme == QuantScheme::Asym) q.zeros.assign(q.scales.size(), 0);
  std::vector<QuantGrid> grid(static_cast<size_t>(rows * ng));

  // Fits group g on the current weights: `cur(r, j)` reads position j; pruned weights excluded.
  std::vector<float> vals;
  auto fit_group = [&](int64_t g, auto&& cur) {
    const int64_t c0 = g * gc, len = std::min(gc, cols - c0);
    vals.resize(static_cast<size_t>(len));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t t = 0; t < len; ++t) {
        const int64_t j = where[c0 + t];
        vals[t] = pruned[j * rows + r] ? 0.f : cur(r, j);
      }
      grid[r * ng + g] = fit_grid(f, vals.data(), len);
      q.scales[r * ng + g] = grid[r * ng + g].scale;
      if (!q.zeros.empty()) q.zeros[r * ng + g] = grid[r * ng + g].zero;
    }
  };
  const bool static_groups = quant && opt.act_order;
  if (static_groups)
    for (int64_t g = 0; g < ng; ++g) fit_group(g, [&](int64_t r, int64_t j) { return W(r, j); });

  const int64_t total_prune = sp.any() && !sp.nm() ? rows * pruned_per_row(sp.p, cols) : 0;
  int64_t pruned_so_far = 0;
  std::vector<int64_t> idx;
  std::vector<float> score;
  Eigen::VectorXf err(rows);
  for (int64_t i1 = 0; i1 < cols; i1 += opt.block) {
    const int64_t i2 = std::min<int64_t>(i1 + opt.block, cols), cnt = i2 - i1;
    MatF W1 = W.middleCols(i1, cnt);
    MatF Err1 = MatF::Zero(rows, cnt);
    const auto Hinv1 = U.block(i1, i1, cnt, cnt);
    auto obs_score = [&](int64_t r, int64_t i) {
      const float d = Hinv1(i, i);
      return W1(r, i) * W1(r, i) / (d * d);
    };
    if (total_prune > 0) {  // SparseGPT unstructured: lowest scores of the whole block
      const int64_t target = std::llround(double(total_prune) * double(i2) / double(cols));
      const int64_t k = target - pruned_so_far, n = rows * cnt;
      score.resize(static_cast<size_t>(n));
      idx.resize(static_cast<size_t>(n));
      for (int64_t i = 0; i < cnt; ++i)
        for (int64_t r = 0; r < rows; ++r) score[i * rows + r] = obs_score(r, i);
      std::iota(idx.begin(), idx.end(), 0);
      if (k > 0) {
        std::nth_element(idx.begin(), idx.begin() + (k - 1), idx.end(), [&](int64_t a, int64_t b) {
          return score[a] < score[b] || (score[a] == score[b] && a < b);
        });
        for (int64_t t = 0; t < k; ++t) pruned[i1 * rows + idx[t]] = 1;
      }
      pruned_so_far = target;
    }
    for (int64_t i = 0; i < cnt; ++i) {
      const int64_t j = i1 + i, c = perm[j];
      if (sp.nm() && j % sp.m == 0) {  // N:M from the current, already-updated weights
        const int64_t len = std::min<int64_t>(sp.m, cols - j);
        const int64_t drop = len - std::min<int64_t>(sp.n, len);
        idx.resize(static_cast<size_t>(len));
        for (int64_t r = 0; r < rows && drop > 0; ++r) {
          std::iota(idx.begin(), idx.end(), 0);
          std::nth_element(idx.begin(), idx.begin() + (drop - 1), idx.end(),
                           [&](int64_t a, int64_t b) {
                             const float sa = obs_score(r, i + a), sb = obs_score(r, i + b);
                             return sa < sb || (sa == sb && a < b);
                           });
          for (int64_t t = 0; t < drop; ++t) pruned[(j + idx[t]) * rows + r] = 1;
        }
      }
      const int64_t g = quant ? c / gc : 0;
      if (quant && !static_groups && c % gc == 0)
        fit_group(g, [&](int64_t r, int64_t jj) { return jj < i2 ? W1(r, jj - i1) : W(r, jj); });
      const float d = Hinv1(i, i);
      for (int64_t r = 0; r < rows; ++r) {
        const float wv = W1(r, i);
        const QuantGrid& gr = quant ? grid[r * ng + g] : QuantGrid{};
        uint16_t code;
        if (pruned[j * rows + r])
          code = static_cast<uint16_t>(f.zero_code(gr.zero));
        else
          code = quantize_value(f, gr, wv);
        q.codes[r * cols + c] = code;
        err(r) = (wv - dequantize_code(f, gr, code)) / d;
      }
      W1.rightCols(cnt - i).noalias() -= err * Hinv1.row(i).tail(cnt - i);
      Err1.col(i) = err;
    }
    if (i2 < cols) W.rightCols(cols - i2).noalias() -= Err1 * U.block(i1, i2, cnt, cols - i2);
  }
  if (opt.kept || sp.any()) {
    q.kept.assign(static_cast<size_t>(rows * cols), 1);
    for (int64_t j = 0; j < cols; ++j)
      for (int64_t r = 0; r < rows; ++r)
        if (pruned[j * rows + r]) q.kept[r * cols + perm[j]] = 0;
  }
  return res;
}

}  // namespace edgellm
