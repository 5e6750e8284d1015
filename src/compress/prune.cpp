#include "compress/prune.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "util/error.h"

namespace edgellm {

int64_t pruned_per_row(double p, int64_t cols) {
  if (!(p >= 0 && p <= 1)) fail("[prune] sparsity {} outside [0, 1]", p);
  return static_cast<int64_t>(std::llround(p * double(cols)));
}

std::vector<float> magnitude_scores(const float* w, int64_t rows, int64_t cols) {
  std::vector<float> s(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < s.size(); ++i) s[i] = std::abs(w[i]);
  return s;
}

std::vector<float> wanda_scores(const float* w, int64_t rows, int64_t cols,
                                const std::vector<double>& col_norms) {
  if (static_cast<int64_t>(col_norms.size()) != cols)
    fail("[wanda] {} column norms for {} input columns", col_norms.size(), cols);
  std::vector<float> s(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      s[r * cols + c] = std::abs(w[r * cols + c]) * static_cast<float>(col_norms[c]);
  return s;
}

namespace {

// Marks the k lowest of score[idx[0..n)] as pruned (ties: lower index first).
void prune_lowest(const float* score, int64_t* idx, int64_t n, int64_t k, uint8_t* keep) {
  if (k <= 0) return;
  auto less = [&](int64_t a, int64_t b) {
    return score[a] < score[b] || (score[a] == score[b] && a < b);
  };
  std::nth_element(idx, idx + (k - 1), idx + n, less);
  for (int64_t i = 0; i < k; ++i) keep[idx[i]] = 0;
}

}  // namespace

std::vector<uint8_t> mask_from_scores(const std::vector<float>& score, int64_t rows, int64_t cols,
                                      const SparsitySpec& s) {
  std::vector<uint8_t> keep(static_cast<size_t>(rows * cols), 1);
  std::vector<int64_t> idx(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    const float* sr = score.data() + r * cols;
    uint8_t* kr = keep.data() + r * cols;
    if (s.nm()) {
      if (!(s.n >= 1 && s.n < s.m)) fail("[prune] N:M {}:{} invalid", s.n, s.m);
      for (int64_t c0 = 0; c0 < cols; c0 += s.m) {
        const int64_t len = std::min<int64_t>(s.m, cols - c0);
        std::iota(idx.begin(), idx.begin() + len, c0);
        prune_lowest(sr, idx.data(), len, len - std::min<int64_t>(s.n, len), kr);
      }
    } else {
      std::iota(idx.begin(), idx.end(), 0);
      prune_lowest(sr, idx.data(), cols, pruned_per_row(s.p, cols), kr);
    }
  }
  return keep;
}

}  // namespace edgellm
