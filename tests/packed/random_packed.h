// Random packed weights for tests (tests/packed, tests/io, tests/kernels): any WeightFormat, with
// codes covering the format's range and, for sparse formats, a random mask; and the reference of
// the prefill GEMM's bf16 path.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "packed/packed_kernels.h"
#include "packed/packed_weight.h"
#include "tensor/dtype.h"
#include "util/rng.h"

namespace edgellm {

// A random QuantizedMatrix in format f: random codes, fp16 scales, zero points, and (sparse
// formats) a random mask with pruned weights holding the zero code.
inline QuantizedMatrix random_q(const WeightFormat& f, int64_t rows, int64_t cols, double p,
                                Rng& rng) {
  QuantizedMatrix q;
  q.fmt = f;
  q.rows = rows;
  q.cols = cols;
  const int64_t ng = f.n_groups(cols);
  q.scales.resize(static_cast<size_t>(rows * ng));
  for (float& s : q.scales) s = f16_to_f32(f32_to_f16(float(0.01 + rng.uniform() * 0.1)));
  if (f.quantized() && f.scheme == QuantScheme::Asym) {
    q.zeros.resize(q.scales.size());
    for (auto& z : q.zeros) z = static_cast<uint8_t>(rng.next() % (f.max_code() + 1));
  }
  q.codes.resize(static_cast<size_t>(rows * cols));
  const uint32_t top = f.quantized() ? f.max_code() - (f.scheme == QuantScheme::Sym ? 1 : 0) : 0;
  for (auto& c : q.codes)
    c = f.quantized() ? static_cast<uint16_t>(rng.next() % (top + 1))
                      : f32_to_f16(float(rng.normal()));
  if (f.sparse != SparseFormat::None) {
    q.kept.assign(q.codes.size(), 1);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c0 = 0; c0 < cols; c0 += (f.sparse == SparseFormat::NM ? f.nm_m : cols)) {
        if (f.sparse == SparseFormat::NM) {  // keep at most N of each M (sometimes fewer)
          const int64_t len = std::min<int64_t>(f.nm_m, cols - c0);
          std::vector<int64_t> idx(len);
          for (int64_t j = 0; j < len; ++j) idx[j] = j;
          for (int64_t j = len - 1; j > 0; --j) std::swap(idx[j], idx[rng.next() % (j + 1)]);
          const int64_t keep = std::min<int64_t>(f.nm_n, len) - (rng.uniform() < 0.2 ? 1 : 0);
          for (int64_t j = keep; j < len; ++j) q.kept[r * cols + c0 + idx[j]] = 0;
        } else {
          for (int64_t c = 0; c < cols; ++c) q.kept[r * cols + c] = rng.uniform() >= p;
        }
      }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        if (!q.kept[r * cols + c]) {
          const uint8_t z = q.zeros.empty() ? 0 : q.zeros[r * ng + q.group_of(c)];
          q.codes[r * cols + c] = static_cast<uint16_t>(f.zero_code(z));
        }
  }
  return q;
}

// y[T, N] = bf16(x)[T, K]·bf16(W)ᵀ in double: what the prefill GEMM on decoded tiles computes on
// the oneDNN bf16 path (kernels/gemm_bf16.h gemm_decoded), W's rows decoded exactly first.
inline std::vector<double> bf16_packed_matmul_ref(const float* x, const PackedView& w, int64_t T) {
  const int64_t N = w.rows, K = w.cols;
  std::vector<float> row(static_cast<size_t>(K));
  std::vector<double> wr(static_cast<size_t>(N * K)), y(static_cast<size_t>(T * N), 0.0);
  for (int64_t n = 0; n < N; ++n) {
    packed_decode_row(w, n, row.data());
    for (int64_t k = 0; k < K; ++k) wr[n * K + k] = bf16_to_f32(f32_to_bf16(row[k]));
  }
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) {
      double a = 0;
      for (int64_t k = 0; k < K; ++k)
        a += double(bf16_to_f32(f32_to_bf16(x[t * K + k]))) * wr[n * K + k];
      y[t * N + n] = a;
    }
  return y;
}

}  // namespace edgellm
