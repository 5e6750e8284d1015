#include "packed/packed_kernels.h"

#include <algorithm>
#include <bit>
#include <vector>

#include "packed/bits.h"
#include "tensor/dtype.h"
#include "util/error.h"

namespace edgellm {

namespace {

// Columns (or slots) unpacked per step: a tile of codes that stays in registers/L1.
constexpr int64_t kColTile = 64;
// Below this many weights a GEMV runs on one thread: waking the pool costs more than it saves.
constexpr int64_t kParallelMinWeights = 1 << 16;

// What a row needs to turn a code into a value.
struct RowDecoder {
  const PackedView& w;
  int64_t r, ng, gc;
  bool q;
  int sym_off;
  RowDecoder(const PackedView& w_, int64_t r_)
      : w(w_),
        r(r_),
        ng(w_.fmt.n_groups(w_.cols)),
        gc(w_.fmt.group_cols(w_.cols)),
        q(w_.fmt.quantized()),
        sym_off(q ? (1 << (w_.fmt.bits - 1)) - 1 : 0) {}
  float scale(int64_t g) const { return f16_to_f32(w.scales[r * ng + g]); }
  int offset(int64_t g) const {
    return w.fmt.scheme == QuantScheme::Sym ? sym_off : w.zeros[r * ng + g];
  }
};

// Calls f(c0, n, vals) for consecutive column tiles of a dense row: vals[0..n) are the decoded
// values of columns c0..c0+n−1, all inside one group.
template <typename F>
void dense_tiles(const PackedView& w, int64_t r, F&& f) {
  const RowDecoder d(w, r);
  const int b = w.fmt.bits;
  const uint8_t* rc = w.codes + r * code_row_bytes(w.fmt, w.cols);
  uint16_t code[kColTile];
  float val[kColTile];
  for (int64_t c0 = 0; c0 < w.cols;) {
    const int64_t g = d.q ? c0 / d.gc : 0;
    const int64_t gend = d.q ? std::min(w.cols, (g + 1) * d.gc) : w.cols;
    const int64_t n = std::min(kColTile, gend - c0);
    bits::unpack(rc, uint64_t(c0) * b, b, n, code);
    if (d.q) {
      const float s = d.scale(g);
      const int off = d.offset(g);
      for (int64_t i = 0; i < n; ++i) val[i] = s * static_cast<float>(int(code[i]) - off);
    } else {
      for (int64_t i = 0; i < n; ++i) val[i] = f16_to_f32(code[i]);
    }
    f(c0, n, val);
    c0 += n;
  }
}

// Calls f(col, value) for each stored (kept or N:M slot) weight of a sparse row.
template <typename F>
void sparse_entries(const PackedView& w, int64_t r, F&& f) {
  const RowDecoder d(w, r);
  const int b = w.fmt.bits;
  auto value = [&](int64_t c, uint16_t code) {
    if (!d.q) return f16_to_f32(code);
    const int64_t g = c / d.gc;
    return d.scale(g) * static_cast<float>(int(code) - d.offset(g));
  };
  uint16_t code[kColTile];
  if (w.fmt.sparse == SparseFormat::Bitmask) {
    const size_t irb = index_row_bytes(w.fmt, w.cols);
    const uint8_t* mask = w.index + r * irb;
    uint64_t pos = w.row_bit[r];
    for (int64_t c0 = 0; c0 < w.cols; c0 += kColTile) {  // 8 mask bytes per tile
      const int64_t nbytes = (std::min(kColTile, w.cols - c0) + 7) / 8;
      int64_t n = 0;
      for (int64_t i = 0; i < nbytes; ++i) n += std::popcount(mask[c0 / 8 + i]);
      bits::unpack(w.codes, pos, b, n, code);
      pos += uint64_t(n) * b;
      int64_t k = 0;
      for (int64_t i = 0; i < nbytes; ++i)
        for (unsigned m = mask[c0 / 8 + i]; m; m &= m - 1) {
          const int64_t c = c0 + 8 * i + std::countr_zero(m);
          f(c, value(c, code[k++]));
        }
    }
    return;
  }
  // N:M: slots in tiles; slot k belongs to M-group k / N.
  const int N = w.fmt.nm_n, M = w.fmt.nm_m, ib = w.fmt.index_bits();
  const int64_t slots = nm_slots(w.fmt, w.cols);
  const uint8_t* rc = w.codes + r * code_row_bytes(w.fmt, w.cols);
  const uint8_t* ri = w.index + r * index_row_bytes(w.fmt, w.cols);
  uint16_t pos[kColTile];
  for (int64_t k0 = 0; k0 < slots; k0 += kColTile) {
    const int64_t n = std::min(kColTile, slots - k0);
    bits::unpack(rc, uint64_t(k0) * b, b, n, code);
    bits::unpack(ri, uint64_t(k0) * ib, ib, n, pos);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t k = k0 + i, c0 = k / N * M;
      if (k % N >= w.cols - c0) continue;  // padding of a short last group
      const int64_t c = c0 + pos[i];
      f(c, value(c, code[i]));
    }
  }
}

}  // namespace

void packed_decode_row(const PackedView& w, int64_t r, float* dst) {
  if (w.fmt.sparse == SparseFormat::None) {
    dense_tiles(w, r, [&](int64_t c0, int64_t n, const float* v) {
      for (int64_t i = 0; i < n; ++i) dst[c0 + i] = v[i];
    });
    return;
  }
  std::fill(dst, dst + w.cols, 0.f);
  sparse_entries(w, r, [&](int64_t c, float v) { dst[c] = v; });
}

float packed_dot_row(const PackedView& w, int64_t r, const float* x) {
  float acc = 0;
  if (w.fmt.sparse == SparseFormat::None) {
    dense_tiles(w, r, [&](int64_t c0, int64_t n, const float* v) {
      float s = 0;
      for (int64_t i = 0; i < n; ++i) s += v[i] * x[c0 + i];
      acc += s;
    });
  } else {
    sparse_entries(w, r, [&](int64_t c, float v) { acc += v * x[c]; });
  }
  return acc;
}

void packed_gemv(const PackedView& w, const float* x, float* y, bool accumulate) {
#pragma omp parallel for schedule(static) if (w.rows * w.cols >= kParallelMinWeights)
  for (int64_t r = 0; r < w.rows; ++r) {
    const float v = packed_dot_row(w, r, x);
    y[r] = accumulate ? y[r] + v : v;
  }
}

}  // namespace edgellm
