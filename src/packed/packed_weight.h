// A compressed linear weight in two forms:
//   QuantizedMatrix — one code per weight, unpacked: what the quantizers and pruners produce and
//                     what tests inspect;
//   PackedWeight    — the stored, bit-packed bytes (layout in weight_format.h), with exact byte
//                     accounting; PackedView is the non-owning view the kernels read (it can point
//                     into a mapped file).
// pack() chooses the sparse layout only where it is smaller than the dense one; pack(unpack(p))
// reproduces p byte for byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "packed/weight_format.h"

namespace edgellm {

struct QuantizedMatrix {
  // sparse: the sparsity layout the packer MAY use (None = always dense). nm_n/nm_m: the pattern
  // `kept` follows (at most N kept in every M consecutive columns of a row).
  WeightFormat fmt;
  int64_t rows = 0, cols = 0;
  std::vector<uint16_t> codes;  // [rows, cols]; a pruned weight holds its group's zero code
  std::vector<float> scales;    // [rows, n_groups], each exactly representable in fp16
  std::vector<uint8_t> zeros;   // [rows, n_groups], asym only (else empty)
  std::vector<uint8_t> kept;    // [rows, cols] 1 = kept, 0 = pruned; empty = all kept

  int64_t n_groups() const { return fmt.n_groups(cols); }
  int64_t group_of(int64_t c) const { return fmt.quantized() ? c / fmt.group_cols(cols) : 0; }
  float value(int64_t r, int64_t c) const;  // the dequantized weight ŵ[r, c]
  std::vector<float> dequantize() const;    // [rows, cols]
  void dequantize_into(float* w) const;     // the same into w[rows, cols]
  int64_t nnz() const;                      // kept weights
  // Shapes and code ranges consistent; throws Error naming `what`.
  void validate(const char* what) const;
};

// Stored bytes of each part; index = bitmask or N:M positions.
struct PackedBytes {
  size_t codes = 0, scales = 0, zeros = 0, index = 0;
  size_t total() const { return codes + scales + zeros + index; }
  double bits_per_weight(int64_t rows, int64_t cols) const {
    return 8.0 * double(total()) / double(rows * cols);
  }
};

// Exact stored bytes of a rows×cols matrix in format f with `nnz` kept weights (used by the
// Bitmask layout only; None and NM do not depend on it). Lets a policy price a choice before
// compressing anything.
PackedBytes packed_bytes(const WeightFormat& f, int64_t rows, int64_t cols, int64_t nnz);
// Bytes per row of the codes (None, NM) and of the index (Bitmask, NM) parts.
size_t code_row_bytes(const WeightFormat& f, int64_t cols);
size_t index_row_bytes(const WeightFormat& f, int64_t cols);
// Slots per row of an N:M matrix: ceil(cols/M)·N.
int64_t nm_slots(const WeightFormat& f, int64_t cols);

struct PackedView {
  WeightFormat fmt;  // the stored layout
  int64_t rows = 0, cols = 0;
  const uint8_t* codes = nullptr;
  const uint16_t* scales = nullptr;   // fp16 [rows, n_groups]
  const uint8_t* zeros = nullptr;     // [rows, n_groups], asym only
  const uint8_t* index = nullptr;     // bitmask or N:M positions
  const uint64_t* row_bit = nullptr;  // Bitmask: [rows+1] bit offset of each row's codes
};

struct PackedWeight {
  WeightFormat fmt;
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> codes;
  std::vector<uint16_t> scales;
  std::vector<uint8_t> zeros;
  std::vector<uint8_t> index;
  // Derived, not stored: Bitmask row offsets (rebuild with index_rows() after reading the parts
  // from a file). 8 B per row in memory.
  std::vector<uint64_t> row_bit;

  PackedView view() const;
  PackedBytes bytes() const;  // stored bytes (row_bit excluded: it is rebuilt from the mask)
  void index_rows();
  // Part sizes consistent with fmt/rows/cols; throws Error naming `what`.
  void validate(const char* what) const;
};

PackedWeight pack(const QuantizedMatrix& q);
QuantizedMatrix unpack(const PackedView& p);

}  // namespace edgellm
