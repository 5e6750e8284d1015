#include "packed/packed_weight.h"

#include <algorithm>
#include <bit>

#include "packed/bits.h"
#include "tensor/dtype.h"
#include "util/error.h"

namespace edgellm {

namespace {

size_t ceil_div(uint64_t a, uint64_t b) { return static_cast<size_t>((a + b - 1) / b); }

// The integer subtracted from a code before scaling: 2^(b−1)−1 (sym) or the zero point (asym).
int code_offset(const WeightFormat& f, uint8_t z) {
  return f.scheme == QuantScheme::Sym ? (1 << (f.bits - 1)) - 1 : z;
}

}  // namespace

float QuantizedMatrix::value(int64_t r, int64_t c) const {
  const uint16_t code = codes[r * cols + c];
  if (!fmt.quantized()) return f16_to_f32(code);
  const int64_t g = r * n_groups() + group_of(c);
  const int off = code_offset(fmt, zeros.empty() ? 0 : zeros[g]);
  return scales[g] * static_cast<float>(static_cast<int>(code) - off);
}

std::vector<float> QuantizedMatrix::dequantize() const {
  std::vector<float> w(static_cast<size_t>(rows * cols));
  dequantize_into(w.data());
  return w;
}

void QuantizedMatrix::dequantize_into(float* w) const {
  // value(r, c) a group at a time: one scale and offset lookup per group, not per weight.
  const int64_t ng = n_groups(), gc = fmt.quantized() ? fmt.group_cols(cols) : cols;
  for (int64_t r = 0; r < rows; ++r) {
    const uint16_t* code = codes.data() + r * cols;
    float* out = w + r * cols;
    if (!fmt.quantized()) {
      for (int64_t c = 0; c < cols; ++c) out[c] = f16_to_f32(code[c]);
      continue;
    }
    for (int64_t g = 0; g < ng; ++g) {
      const int64_t c0 = g * gc, c1 = std::min(cols, c0 + gc), gi = r * ng + g;
      const int off = code_offset(fmt, zeros.empty() ? 0 : zeros[gi]);
      const float scale = scales[gi];
      for (int64_t c = c0; c < c1; ++c)
        out[c] = scale * static_cast<float>(static_cast<int>(code[c]) - off);
    }
  }
}

int64_t QuantizedMatrix::nnz() const {
  if (kept.empty()) return rows * cols;
  int64_t n = 0;
  for (uint8_t k : kept) n += k != 0;
  return n;
}

void QuantizedMatrix::validate(const char* what) const {
  fmt.validate(what);
  const size_t n = static_cast<size_t>(rows * cols), ng = static_cast<size_t>(rows * n_groups());
  if (rows <= 0 || cols <= 0) fail("[pack] {}: shape {}x{} is empty", what, rows, cols);
  if (codes.size() != n) fail("[pack] {}: {} codes for {}x{}", what, codes.size(), rows, cols);
  if (fmt.quantized() && scales.size() != ng)
    fail("[pack] {}: {} scales, expected {}", what, scales.size(), ng);
  const bool asym = fmt.quantized() && fmt.scheme == QuantScheme::Asym;
  if (zeros.size() != (asym ? ng : 0))
    fail("[pack] {}: {} zero points, expected {}", what, zeros.size(), asym ? ng : 0);
  if (!kept.empty() && kept.size() != n)
    fail("[pack] {}: mask of {} for {}x{}", what, kept.size(), rows, cols);
  for (size_t i = 0; i < scales.size(); ++i)
    if (f16_to_f32(f32_to_f16(scales[i])) != scales[i])
      fail("[pack] {}: scale {} (= {}) is not an fp16 value", what, i, scales[i]);
  for (size_t i = 0; i < zeros.size(); ++i)
    if (zeros[i] > fmt.max_code())
      fail("[pack] {}: zero point {} = {} > {}", what, i, zeros[i], fmt.max_code());
  if (fmt.quantized())
    for (size_t i = 0; i < n; ++i)
      if (codes[i] > fmt.max_code())
        fail("[pack] {}: code {} = {} > {}", what, i, codes[i], fmt.max_code());
}

int64_t nm_slots(const WeightFormat& f, int64_t cols) {
  return f.sparse == SparseFormat::NM ? (cols + f.nm_m - 1) / f.nm_m * f.nm_n : 0;
}

size_t code_row_bytes(const WeightFormat& f, int64_t cols) {
  switch (f.sparse) {
    case SparseFormat::None:
      return ceil_div(uint64_t(cols) * f.bits, 8);
    case SparseFormat::NM:
      return ceil_div(uint64_t(nm_slots(f, cols)) * f.bits, 8);
    case SparseFormat::Bitmask:
      return 0;  // one stream over the matrix
  }
  return 0;
}

size_t index_row_bytes(const WeightFormat& f, int64_t cols) {
  switch (f.sparse) {
    case SparseFormat::None:
      return 0;
    case SparseFormat::Bitmask:
      return ceil_div(uint64_t(cols), 8);
    case SparseFormat::NM:
      return ceil_div(uint64_t(nm_slots(f, cols)) * f.index_bits(), 8);
  }
  return 0;
}

PackedBytes packed_bytes(const WeightFormat& f, int64_t rows, int64_t cols, int64_t nnz) {
  PackedBytes b;
  const size_t ng = static_cast<size_t>(rows * f.n_groups(cols));
  b.scales = 2 * ng;
  b.zeros = f.quantized() && f.scheme == QuantScheme::Asym ? ng : 0;
  b.codes = f.sparse == SparseFormat::Bitmask ? ceil_div(uint64_t(nnz) * f.bits, 8)
                                              : size_t(rows) * code_row_bytes(f, cols);
  b.index = size_t(rows) * index_row_bytes(f, cols);
  return b;
}

PackedView PackedWeight::view() const {
  PackedView v;
  v.fmt = fmt;
  v.rows = rows;
  v.cols = cols;
  v.codes = codes.data();
  v.scales = scales.empty() ? nullptr : scales.data();
  v.zeros = zeros.empty() ? nullptr : zeros.data();
  v.index = index.empty() ? nullptr : index.data();
  v.row_bit = row_bit.empty() ? nullptr : row_bit.data();
  return v;
}

PackedBytes PackedWeight::bytes() const {
  PackedBytes b;
  b.codes = codes.size();
  b.scales = scales.size() * 2;
  b.zeros = zeros.size();
  b.index = index.size();
  return b;
}

void PackedWeight::index_rows() {
  row_bit.assign(static_cast<size_t>(rows + 1), 0);
  if (fmt.sparse != SparseFormat::Bitmask) return;
  const size_t irb = index_row_bytes(fmt, cols);
  for (int64_t r = 0; r < rows; ++r) {
    uint64_t n = 0;
    for (size_t i = 0; i < irb; ++i) n += std::popcount(index[r * irb + i]);
    row_bit[r + 1] = row_bit[r] + n * uint64_t(fmt.bits);
  }
}

void PackedWeight::validate(const char* what) const {
  fmt.validate(what);
  if (rows <= 0 || cols <= 0) fail("[packed] {}: shape {}x{} is empty", what, rows, cols);
  const size_t ng = static_cast<size_t>(rows * fmt.n_groups(cols));
  const bool asym = fmt.quantized() && fmt.scheme == QuantScheme::Asym;
  if (scales.size() != ng) fail("[packed] {}: {} scales, expected {}", what, scales.size(), ng);
  if (zeros.size() != (asym ? ng : 0))
    fail("[packed] {}: {} zero points, expected {}", what, zeros.size(), asym ? ng : 0);
  const size_t ib = size_t(rows) * index_row_bytes(fmt, cols);
  if (index.size() != ib)
    fail("[packed] {}: index of {} bytes, expected {}", what, index.size(), ib);
  int64_t nnz = 0;
  if (fmt.sparse == SparseFormat::Bitmask) {
    for (uint8_t m : index) nnz += std::popcount(m);
    const size_t irb = index_row_bytes(fmt, cols);
    if (cols % 8 != 0)  // padding bits of each mask row must be clear, else row offsets lie
      for (int64_t r = 0; r < rows; ++r)
        if (index[r * irb + irb - 1] >> (cols % 8))
          fail("[packed] {}: mask row {} has bits set past column {}", what, r, cols);
  }
  const size_t cb = packed_bytes(fmt, rows, cols, nnz).codes;
  if (codes.size() != cb)
    fail("[packed] {}: codes of {} bytes, expected {}", what, codes.size(), cb);
  if (fmt.sparse == SparseFormat::Bitmask && row_bit.size() != size_t(rows + 1))
    fail("[packed] {}: bitmask row offsets not built (index_rows)", what);
}

PackedWeight pack(const QuantizedMatrix& q) {
  q.validate("pack");
  const int64_t rows = q.rows, cols = q.cols;
  WeightFormat f = q.fmt;
  const int b = f.bits;
  // Choose the layout: sparse only where a mask exists and the sparse bytes are fewer.
  if (f.sparse != SparseFormat::None) {
    WeightFormat dense = f;
    dense.sparse = SparseFormat::None;
    dense.nm_n = dense.nm_m = 0;
    const int64_t nnz = q.nnz();
    if (q.kept.empty() ||
        packed_bytes(f, rows, cols, nnz).total() >= packed_bytes(dense, rows, cols, nnz).total())
      f = dense;
  }
  PackedWeight p;
  p.fmt = f;
  p.rows = rows;
  p.cols = cols;
  p.scales.resize(q.scales.size());
  for (size_t i = 0; i < q.scales.size(); ++i) p.scales[i] = f32_to_f16(q.scales[i]);
  p.zeros = q.zeros;
  const int64_t nnz = q.nnz();
  const PackedBytes pb = packed_bytes(f, rows, cols, nnz);
  p.codes.assign(pb.codes, 0);
  p.index.assign(pb.index, 0);
  const uint16_t* codes = q.codes.data();
  switch (f.sparse) {
    case SparseFormat::None: {
      const size_t crb = code_row_bytes(f, cols);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
          bits::put(p.codes.data() + r * crb, uint64_t(c) * b, b, codes[r * cols + c]);
      break;
    }
    case SparseFormat::Bitmask: {
      const size_t irb = index_row_bytes(f, cols);
      uint64_t pos = 0;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
          if (q.kept[r * cols + c]) {
            p.index[r * irb + c / 8] =
                static_cast<uint8_t>(p.index[r * irb + c / 8] | (1u << (c % 8)));
            bits::put(p.codes.data(), pos, b, codes[r * cols + c]);
            pos += b;
          }
      break;
    }
    case SparseFormat::NM: {
      const int N = f.nm_n, M = f.nm_m, ib = f.index_bits();
      const size_t crb = code_row_bytes(f, cols), irb = index_row_bytes(f, cols);
      std::vector<int> slots;
      for (int64_t r = 0; r < rows; ++r) {
        int64_t k = 0;  // slot number in the row
        for (int64_t c0 = 0; c0 < cols; c0 += M) {
          const int len = static_cast<int>(std::min<int64_t>(M, cols - c0));
          slots.clear();
          for (int j = 0; j < len; ++j)
            if (q.kept[r * cols + c0 + j]) slots.push_back(j);
          if (static_cast<int>(slots.size()) > N)
            fail("[pack] row {} columns {}..{}: {} kept weights break the {}:{} pattern", r, c0,
                 c0 + len - 1, slots.size(), N, M);
          // Fill to N slots with pruned positions (they hold the code of 0), then pad slots of a
          // short last group (position 0, code of 0; the decoder skips slots >= len).
          for (int j = 0; j < len && static_cast<int>(slots.size()) < N; ++j)
            if (!q.kept[r * cols + c0 + j]) slots.push_back(j);
          std::sort(slots.begin(), slots.end());
          const uint8_t z = q.zeros.empty() ? 0 : q.zeros[r * q.n_groups() + q.group_of(c0)];
          for (int s = 0; s < N; ++s, ++k) {
            const bool real = s < static_cast<int>(slots.size());
            const int j = real ? slots[s] : 0;
            const uint32_t code = real ? codes[r * cols + c0 + j] : f.zero_code(z);
            bits::put(p.codes.data() + r * crb, uint64_t(k) * b, b, code);
            bits::put(p.index.data() + r * irb, uint64_t(k) * ib, ib, static_cast<uint32_t>(j));
          }
        }
      }
      break;
    }
  }
  p.index_rows();
  return p;
}

QuantizedMatrix unpack(const PackedView& p) {
  QuantizedMatrix q;
  q.fmt = p.fmt;
  q.rows = p.rows;
  q.cols = p.cols;
  const int64_t rows = p.rows, cols = p.cols, ng = p.fmt.n_groups(cols);
  const int b = p.fmt.bits;
  q.scales.resize(static_cast<size_t>(rows * ng));
  for (size_t i = 0; i < q.scales.size(); ++i) q.scales[i] = f16_to_f32(p.scales[i]);
  if (p.zeros) q.zeros.assign(p.zeros, p.zeros + rows * ng);
  q.codes.assign(static_cast<size_t>(rows * cols), 0);
  auto zero_code = [&](int64_t r, int64_t c) -> uint16_t {
    return static_cast<uint16_t>(
        p.fmt.zero_code(q.zeros.empty() ? 0 : q.zeros[r * ng + q.group_of(c)]));
  };
  switch (p.fmt.sparse) {
    case SparseFormat::None: {
      const size_t crb = code_row_bytes(p.fmt, cols);
      for (int64_t r = 0; r < rows; ++r)
        bits::unpack(p.codes + r * crb, 0, b, cols, q.codes.data() + r * cols);
      break;
    }
    case SparseFormat::Bitmask: {
      const size_t irb = index_row_bytes(p.fmt, cols);
      q.kept.assign(q.codes.size(), 0);
      uint64_t pos = 0;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          const bool k = (p.index[r * irb + c / 8] >> (c % 8)) & 1;
          q.kept[r * cols + c] = k;
          if (k) {
            q.codes[r * cols + c] = static_cast<uint16_t>(bits::get(p.codes, pos, b));
            pos += b;
          } else {
            q.codes[r * cols + c] = zero_code(r, c);
          }
        }
      break;
    }
    case SparseFormat::NM: {
      const int N = p.fmt.nm_n, M = p.fmt.nm_m, ib = p.fmt.index_bits();
      const size_t crb = code_row_bytes(p.fmt, cols), irb = index_row_bytes(p.fmt, cols);
      q.kept.assign(q.codes.size(), 0);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) q.codes[r * cols + c] = zero_code(r, c);
        int64_t k = 0;
        for (int64_t c0 = 0; c0 < cols; c0 += M) {
          const int len = static_cast<int>(std::min<int64_t>(M, cols - c0));
          for (int s = 0; s < N; ++s, ++k) {
            if (s >= len) continue;  // padding of a short last group
            const int64_t j = bits::get(p.index + r * irb, uint64_t(k) * ib, ib);
            if (j >= len)
              fail("[unpack] row {} slot {}: position {} outside its {}-column group", r, k, j,
                   len);
            q.codes[r * cols + c0 + j] =
                static_cast<uint16_t>(bits::get(p.codes + r * crb, uint64_t(k) * b, b));
            q.kept[r * cols + c0 + j] = 1;
          }
        }
      }
      break;
    }
  }
  return q;
}

}  // namespace edgellm
