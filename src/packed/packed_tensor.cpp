#include "packed/packed_tensor.h"

#include <algorithm>
#include <bit>

#include "packed/bits.h"
#include "util/error.h"

namespace edgellm {

namespace {

void check_size(const std::string& what, const char* part, size_t got, size_t want) {
  if (got != want)
    fail("[packed] {}: part '{}' holds {} bytes, the format needs {}", what, part, got, want);
}

}  // namespace

PackedTensor::PackedTensor(const WeightFormat& fmt, int64_t rows, int64_t cols,
                           const PackedParts& parts, const std::string& what, int64_t kept)
    : parts_(parts) {
  fmt.validate(what);
  if (rows <= 0 || cols <= 0) fail("[packed] {}: shape {}x{} is empty", what, rows, cols);
  view_.fmt = fmt;
  view_.rows = rows;
  view_.cols = cols;
  const size_t ng = static_cast<size_t>(rows * fmt.n_groups(cols));
  const bool asym = fmt.quantized() && fmt.scheme == QuantScheme::Asym;
  check_size(what, "scales", parts.scales.size, fmt.quantized() ? 2 * ng : 0);
  check_size(what, "zeros", parts.zeros.size, asym ? ng : 0);
  const size_t irb = index_row_bytes(fmt, cols);
  check_size(what, "index", parts.index.size, size_t(rows) * irb);
  if (parts.scales.size && reinterpret_cast<uintptr_t>(parts.scales.data) % 2 != 0)
    fail("[packed] {}: scales are not 2-byte aligned", what);
  int64_t capacity = rows * cols;  // weights that have a stored value
  if (fmt.sparse == SparseFormat::Bitmask) {
    const uint8_t* mask = parts.index.data;
    row_bit_.assign(static_cast<size_t>(rows + 1), 0);
    for (int64_t r = 0; r < rows; ++r) {
      // Padding bits past the last column must be clear, else the row offsets would lie.
      if (cols % 8 != 0 && (mask[r * irb + irb - 1] >> (cols % 8)) != 0)
        fail("[packed] {}: mask row {} has bits set past column {}", what, r, cols);
      uint64_t n = 0;
      for (size_t i = 0; i < irb; ++i) n += std::popcount(mask[r * irb + i]);
      row_bit_[r + 1] = row_bit_[r] + n * uint64_t(fmt.bits);
    }
    capacity = static_cast<int64_t>(row_bit_[rows] / uint64_t(fmt.bits));
    view_.row_bit = row_bit_.data();
  } else if (fmt.sparse == SparseFormat::NM) {
    // Every real slot's position must lie inside its group and increase within it (what pack()
    // writes), so the kernels never index past the row.
    const int N = fmt.nm_n, M = fmt.nm_m, ib = fmt.index_bits();
    const int64_t groups = (cols + M - 1) / M;
    int64_t real_slots = 0;  // per row: N per group, fewer in a last group shorter than N
    for (int64_t g = 0; g < groups; ++g) real_slots += std::min<int64_t>(N, cols - g * M);
    for (int64_t r = 0; r < rows; ++r) {
      const uint8_t* ri = parts.index.data + r * irb;
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t len = std::min<int64_t>(M, cols - g * M);
        int64_t prev = -1;
        for (int s = 0; s < N && s < len; ++s) {
          const int64_t pos = bits::get(ri, uint64_t(g * N + s) * ib, ib);
          if (pos >= len || pos <= prev)
            fail(
                "[packed] {}: row {} group {} slot {}: position {} (group of {} columns, "
                "previous {})",
                what, r, g, s, pos, len, prev);
          prev = pos;
        }
      }
    }
    capacity = rows * real_slots;
  }
  check_size(what, "codes", parts.codes.size, packed_bytes(fmt, rows, cols, capacity).codes);
  if (fmt.sparse == SparseFormat::Bitmask && kept >= 0 && kept != capacity)
    fail("[packed] {}: {} weights kept but the mask has {}", what, kept, capacity);
  if (kept > capacity)
    fail("[packed] {}: {} weights kept but the layout stores at most {}", what, kept, capacity);
  kept_ = kept >= 0 ? kept : capacity;
  view_.codes = parts.codes.data;
  view_.scales = reinterpret_cast<const uint16_t*>(parts.scales.data);
  view_.zeros = parts.zeros.size ? parts.zeros.data : nullptr;
  view_.index = parts.index.size ? parts.index.data : nullptr;
  if (!parts.scales.size) view_.scales = nullptr;
}

PackedTensor PackedTensor::over(const PackedWeight& p, int64_t kept) {
  PackedParts parts;
  parts.codes = {p.codes.data(), p.codes.size()};
  parts.scales = {reinterpret_cast<const uint8_t*>(p.scales.data()), p.scales.size() * 2};
  parts.zeros = {p.zeros.data(), p.zeros.size()};
  parts.index = {p.index.data(), p.index.size()};
  return PackedTensor(p.fmt, p.rows, p.cols, parts, "packed weight", kept);
}

PackedBytes PackedTensor::bytes() const {
  PackedBytes b;
  b.codes = parts_.codes.size;
  b.scales = parts_.scales.size;
  b.zeros = parts_.zeros.size;
  b.index = parts_.index.size;
  return b;
}

PackedWeight permute_packed_rows(const PackedView& w,
                                 const std::function<int64_t(int64_t)>& src_row) {
  const WeightFormat& f = w.fmt;
  PackedWeight p;
  p.fmt = f;
  p.rows = w.rows;
  p.cols = w.cols;
  const int64_t ng = f.n_groups(w.cols);
  const size_t crb = code_row_bytes(f, w.cols), irb = index_row_bytes(f, w.cols);
  if (w.scales) p.scales.resize(static_cast<size_t>(w.rows * ng));
  if (w.zeros) p.zeros.resize(static_cast<size_t>(w.rows * ng));
  p.index.resize(size_t(w.rows) * irb);
  const uint64_t total_bits =
      f.sparse == SparseFormat::Bitmask ? w.row_bit[w.rows] : uint64_t(w.rows) * crb * 8;
  p.codes.assign(static_cast<size_t>((total_bits + 7) / 8), 0);
  uint64_t pos = 0;  // Bitmask: where the next row's codes start in the output stream
  for (int64_t r = 0; r < w.rows; ++r) {
    const int64_t s = src_row(r);
    EDGELLM_CHECK(s >= 0 && s < w.rows, "permute_packed_rows: row {} -> {}", r, s);
    if (w.scales) std::copy_n(w.scales + s * ng, ng, p.scales.data() + r * ng);
    if (w.zeros) std::copy_n(w.zeros + s * ng, ng, p.zeros.data() + r * ng);
    if (irb) std::copy_n(w.index + s * irb, irb, p.index.data() + r * irb);
    if (f.sparse != SparseFormat::Bitmask) {
      std::copy_n(w.codes + s * crb, crb, p.codes.data() + r * crb);
      continue;
    }
    // Copy the row's bit range 16 bits at a time (the output bytes start zeroed).
    for (uint64_t b = w.row_bit[s]; b < w.row_bit[s + 1];) {
      const int n = static_cast<int>(std::min<uint64_t>(16, w.row_bit[s + 1] - b));
      bits::put(p.codes.data(), pos, n, bits::get(w.codes, b, n));
      b += n;
      pos += n;
    }
  }
  p.index_rows();
  return p;
}

}  // namespace edgellm
