// Scalar references of the packed kernels (packed_kernels.h): the truth the fast paths are
// tested against. They read the layout of weight_format.h one bit at a time and locate a bitmask
// row by counting the mask bits of the rows before it, sharing no code with the kernels or the
// packer. Templated on the scalar type (double in tests). Slow by design.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "packed/packed_weight.h"
#include "tensor/dtype.h"

namespace edgellm::ref {

inline uint32_t read_bits(const uint8_t* p, uint64_t pos, int b) {
  uint32_t v = 0;
  for (int i = 0; i < b; ++i) v |= uint32_t((p[(pos + i) / 8] >> ((pos + i) % 8)) & 1u) << i;
  return v;
}

template <typename S>
S packed_value(const PackedView& w, int64_t r, int64_t c, uint32_t code) {
  if (w.fmt.bits == 16) return S(f16_to_f32(static_cast<uint16_t>(code)));
  const int64_t gc = w.fmt.group > 0 ? w.fmt.group : w.cols;
  const int64_t ng = (w.cols + gc - 1) / gc, g = r * ng + c / gc;
  const int64_t off =
      w.fmt.scheme == QuantScheme::Sym ? (int64_t(1) << (w.fmt.bits - 1)) - 1 : w.zeros[g];
  return S(f16_to_f32(w.scales[g])) * S(int64_t(code) - off);
}

// dst[K] = row r of W.
template <typename S>
void packed_decode_row(const PackedView& w, int64_t r, S* dst) {
  const int b = w.fmt.bits;
  const int64_t K = w.cols;
  for (int64_t c = 0; c < K; ++c) dst[c] = S(0);
  if (w.fmt.sparse == SparseFormat::None) {
    const uint64_t row_bytes = (uint64_t(K) * b + 7) / 8;
    for (int64_t c = 0; c < K; ++c)
      dst[c] = packed_value<S>(w, r, c, read_bits(w.codes + r * row_bytes, uint64_t(c) * b, b));
  } else if (w.fmt.sparse == SparseFormat::Bitmask) {
    const uint64_t mask_bytes = (uint64_t(K) + 7) / 8;
    auto kept = [&](int64_t rr, int64_t c) { return read_bits(w.index + rr * mask_bytes, c, 1); };
    uint64_t before = 0;  // kept weights in rows < r
    for (int64_t rr = 0; rr < r; ++rr)
      for (int64_t c = 0; c < K; ++c) before += kept(rr, c);
    uint64_t pos = before * b;
    for (int64_t c = 0; c < K; ++c)
      if (kept(r, c)) {
        dst[c] = packed_value<S>(w, r, c, read_bits(w.codes, pos, b));
        pos += b;
      }
  } else {
    const int N = w.fmt.nm_n, M = w.fmt.nm_m;
    int ib = 0;
    while ((1 << ib) < M) ++ib;
    const int64_t groups = (K + M - 1) / M, slots = groups * N;
    const uint64_t code_bytes = (uint64_t(slots) * b + 7) / 8,
                   idx_bytes = (uint64_t(slots) * ib + 7) / 8;
    for (int64_t g = 0; g < groups; ++g)
      for (int s = 0; s < N; ++s) {
        const int64_t len = std::min<int64_t>(M, K - g * M), k = g * N + s;
        if (s >= len) continue;
        const int64_t c = g * M + read_bits(w.index + r * idx_bytes, uint64_t(k) * ib, ib);
        dst[c] = packed_value<S>(w, r, c, read_bits(w.codes + r * code_bytes, uint64_t(k) * b, b));
      }
  }
}

// y[T, N] = x[T, K] · Wᵀ
template <typename S>
void packed_matmul(const S* x, const PackedView& w, S* y, int64_t T) {
  std::vector<S> row(static_cast<size_t>(w.cols));
  for (int64_t n = 0; n < w.rows; ++n) {
    packed_decode_row(w, n, row.data());
    for (int64_t t = 0; t < T; ++t) {
      S acc = 0;
      for (int64_t k = 0; k < w.cols; ++k) acc += x[t * w.cols + k] * row[k];
      y[t * w.rows + n] = acc;
    }
  }
}

// dx[T, K] += dy[T, N] · W
template <typename S>
void packed_matmul_backward(S* dx, const S* dy, const PackedView& w, int64_t T) {
  std::vector<S> row(static_cast<size_t>(w.cols));
  for (int64_t n = 0; n < w.rows; ++n) {
    packed_decode_row(w, n, row.data());
    for (int64_t t = 0; t < T; ++t)
      for (int64_t k = 0; k < w.cols; ++k) dx[t * w.cols + k] += dy[t * w.rows + n] * row[k];
  }
}

}  // namespace edgellm::ref
