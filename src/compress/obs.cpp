#include "compress/obs.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <numeric>

#include "compress/rtn.h"
#include "kernels/matmul.h"
#include "tensor/dtype.h"
#include "util/error.h"

namespace edgellm {

namespace {

using MatF = Eigen::MatrixXf;  // column-major: a column of W is contiguous
using MatD = Eigen::MatrixXd;

}  // namespace

namespace {

constexpr int64_t kCholBlock = 128;  // panel width: the trailing updates are rank-128 GEMMs

// Right-looking blocked Cholesky, in place on the lower triangle of m (the strictly upper part is
// left as it was). Eigen's own LLT runs on one thread; here the panel solve and the trailing
// update (nearly all of the n³/3 flops) are split over OpenMP threads, each running a
// single-threaded Eigen product on its share.
bool cholesky_lower_in_place(MatD& m) {
  const int64_t n = m.rows();
  for (int64_t k = 0; k < n; k += kCholBlock) {
    const int64_t kb = std::min(kCholBlock, n - k), r = n - k - kb;
    Eigen::Ref<MatD> a11 = m.block(k, k, kb, kb);
    Eigen::LLT<Eigen::Ref<MatD>> llt(a11);
    if (llt.info() != Eigen::Success) return false;
    if (r == 0) break;
    const int64_t chunks = (r + kCholBlock - 1) / kCholBlock;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {  // A21 ← A21·L11⁻ᵀ, by row chunks
      const int64_t i0 = c * kCholBlock, ib = std::min(kCholBlock, r - i0);
      auto a21 = m.block(k + kb + i0, k, ib, kb);
      m.block(k, k, kb, kb)
          .triangularView<Eigen::Lower>()
          .transpose()
          .solveInPlace<Eigen::OnTheRight>(a21);
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t c = 0; c < chunks; ++c) {  // A22 ← A22 − A21·A21ᵀ, lower part, by column blocks
      const int64_t j0 = c * kCholBlock, jb = std::min(kCholBlock, r - j0);
      m.block(k + kb + j0, k + kb + j0, r - j0, jb).noalias() -=
          m.block(k + kb + j0, k, r - j0, kb) * m.block(k + kb + j0, k, jb, kb).transpose();
    }
  }
  return true;
}

// U = J·R⁻¹·J for m = J·A·J (A read reversed) factored in place to R: see inverse_cholesky_upper.
bool inverse_cholesky_upper_of_reversed(MatD& m, float* u) {
  const int64_t n = m.rows();
  if (!cholesky_lower_in_place(m)) return false;
  // R⁻¹ by column blocks: block [j0, j0 + jb) of the identity is zero above row j0, so its
  // solution is too, and only the trailing system R[j0:, j0:]·X = I[j0:, j0:j0+jb] is solved
  // (n³/3 flops in all, where a solve against the whole identity takes n³). Each block is
  // written reversed into u: u(n-1-i, n-1-j) = R⁻¹(i, j).
  std::fill(u, u + n * n, 0.f);
  const int64_t chunks = (n + kCholBlock - 1) / kCholBlock;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t j0 = c * kCholBlock, jb = std::min(kCholBlock, n - j0), h = n - j0;
    MatD x = MatD::Identity(h, jb);
    m.block(j0, j0, h, h).triangularView<Eigen::Lower>().solveInPlace(x);
    for (int64_t j = 0; j < jb; ++j)
      for (int64_t i = j; i < h; ++i)
        u[(n - 1 - (j0 + j)) * n + (n - 1 - (j0 + i))] = static_cast<float>(x(i, j));
  }
  return true;
}

// Steps 1-4 on H read through h(i, j), so that a caller holding H in another form (the
// calibration sums) need not copy it: the only n×n double matrix here is the one factored.
template <class HAt>
ObsFactor obs_factor_of(const HAt& h, int64_t cols, bool act_order, double percdamp) {
  ObsFactor f;
  f.cols = cols;
  f.act_order = act_order;
  f.percdamp = percdamp;
  // Column order: identity, or act-order (diag H descending, stable).
  f.perm.resize(static_cast<size_t>(cols));
  std::iota(f.perm.begin(), f.perm.end(), 0);
  if (act_order)
    std::stable_sort(f.perm.begin(), f.perm.end(),
                     [&](int64_t a, int64_t b) { return h(a, a) > h(b, b); });
  // Hp = H permuted, a dead column's zero diagonal set to 1.
  f.dead.assign(static_cast<size_t>(cols), 0);
  double diag_sum = 0;
  for (int64_t j = 0; j < cols; ++j) {
    const double d = h(f.perm[j], f.perm[j]);
    f.dead[j] = d == 0;
    diag_sum += d == 0 ? 1.0 : d;
  }
  // U = upper Cholesky factor of (Hp + λI)⁻¹, so (Hp + λI)⁻¹ = UᵀU.
  double damp = percdamp * (diag_sum / double(cols));
  f.U.resize(static_cast<size_t>(cols * cols));
  MatD m(cols, cols);
  for (int attempt = 0;; ++attempt) {
    for (int64_t j = 0; j < cols; ++j)  // m = J·(Hp + λI)·J; H symmetric, read along its rows
      for (int64_t k = 0; k < cols; ++k) {
        double v = h(f.perm[cols - 1 - j], f.perm[cols - 1 - k]);
        if (j == k) v = (f.dead[cols - 1 - j] ? 1.0 : v) + damp;
        m(k, j) = v;
      }
    if (inverse_cholesky_upper_of_reversed(m, f.U.data())) break;
    if (attempt == 4)
      fail("[obs] H + {}·I is not positive definite ({} columns, percdamp {})", damp, cols,
           percdamp);
    damp = damp > 0 ? damp * 10 : 1e-8;
  }
  f.damp = damp;
  return f;
}

}  // namespace

bool inverse_cholesky_upper(const double* a, int64_t n, float* u) {
  // With J the reversal permutation and J·A·J = R·Rᵀ (R lower), A⁻¹ = (R⁻¹J)ᵀ(R⁻¹J), so
  // U = J·R⁻¹·J: upper triangular with a positive diagonal, hence A⁻¹'s Cholesky factor. One
  // Cholesky and one triangular inverse, n³/3 flops each, where inverting A and factoring the
  // inverse took ~2x the flops (the O(n³) part of GPTQ / SparseGPT at n = 5632).
  MatD m = Eigen::Map<const MatD>(a, n, n).reverse();
  return inverse_cholesky_upper_of_reversed(m, u);
}

ObsFactor obs_factor(const std::vector<double>& H, int64_t cols, bool act_order, double percdamp) {
  if (static_cast<int64_t>(H.size()) != cols * cols)
    fail("[obs] Hessian of {} values for {} input columns", H.size(), cols);
  return obs_factor_of([&](int64_t i, int64_t j) { return H[i * cols + j]; }, cols, act_order,
                       percdamp);
}

ObsFactor obs_factor_of_sums(const std::vector<double>& s, int64_t n, int64_t cols, bool act_order,
                             double percdamp) {
  if (static_cast<int64_t>(s.size()) != cols * cols)
    fail("[obs] calibration sums of {} values for {} input columns", s.size(), cols);
  if (n <= 0) fail("[obs] no calibration rows");
  return obs_factor_of([&](int64_t i, int64_t j) { return hessian_entry(s[i * cols + j], n); },
                       cols, act_order, percdamp);
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
    // The lazy update of the columns after the block, W[:, i2:] −= Err1·U[i1:i2, i2:]: nearly all
    // of the rows·cols² flops, on the fp32 sgemm (runtime-dispatched SIMD, threaded; Eigen's
    // product runs at the build's baseline ISA). Column-major matrices read as row-major
    // transposes: Wᵀ[i2:, :] −= U[i1:i2, i2:]ᵀ·Err1ᵀ.
    if (i2 < cols)
      sgemm(false, false, cols - i2, rows, cnt, -1.f, fac->U.data() + i2 * cols + i1, cols,
            Err1.data(), rows, 1.f, W.data() + i2 * rows, rows);
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
