// Masks of the pruners that need no weight update (1 = kept):
//   magnitude  score |W_ij|                      (per output row)
//   Wanda      score |W_ij|·‖X_j‖₂               (Sun et al. 2023; per output row, no update)
// Unstructured: each row drops its round(p·cols) lowest scores — the same count SparseGPT prunes
// in total (sparsegpt.h), so every pruner's bytes are known before it runs. N:M: in every M
// consecutive columns the M−N lowest go (a short last group of r columns keeps min(N, r)).
// Ties break toward the lower column, so masks are deterministic.
#pragma once

#include <cstdint>
#include <vector>

namespace edgellm {

struct SparsitySpec {
  double p = 0;      // unstructured fraction pruned (ignored when n > 0)
  int n = 0, m = 0;  // N:M when n > 0
  bool nm() const { return n > 0; }
  bool any() const { return nm() || p > 0; }
};

// Weights pruned per row for an unstructured fraction p of `cols` columns.
int64_t pruned_per_row(double p, int64_t cols);

std::vector<float> magnitude_scores(const float* w, int64_t rows, int64_t cols);
std::vector<float> wanda_scores(const float* w, int64_t rows, int64_t cols,
                                const std::vector<double>& col_norms);
// Keep-mask [rows, cols] from scores [rows, cols].
std::vector<uint8_t> mask_from_scores(const std::vector<float>& score, int64_t rows, int64_t cols,
                                      const SparsitySpec& s);

}  // namespace edgellm
