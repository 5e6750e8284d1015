// A packed weight whose parts live in memory owned elsewhere — a file mapping, the model's weight
// arena, a PackedWeight — which is how loaded checkpoints and the Model hold compressed linears
// (io/tensor_set.h: Tensor::packed). Construction checks every part's size and every N:M position
// against (format, rows, cols) and derives what is not stored (the Bitmask row offsets), so a
// malformed file fails here, naming the tensor, and never makes a kernel read out of bounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "packed/packed_weight.h"

namespace edgellm {

struct ByteSpan {
  const uint8_t* data = nullptr;
  size_t size = 0;
};

// The stored parts (weight_format.h): codes, fp16 scales, uint8 zero points, bitmask/N:M index.
// Absent parts have size 0.
struct PackedParts {
  ByteSpan codes, scales, zeros, index;
};

class PackedTensor {
 public:
  // `kept`: weights kept by the pruner (−1: every stored value; a Bitmask must match its mask's
  // popcount). `what` names the tensor (and file) in errors. scales must be 2-byte aligned.
  PackedTensor(const WeightFormat& fmt, int64_t rows, int64_t cols, const PackedParts& parts,
               const std::string& what, int64_t kept = -1);
  // A view of p's vectors (p must outlive it).
  static PackedTensor over(const PackedWeight& p, int64_t kept = -1);
  PackedTensor(const PackedTensor&) = delete;
  PackedTensor& operator=(const PackedTensor&) = delete;
  PackedTensor(PackedTensor&&) = default;

  const PackedView& view() const { return view_; }  // what the kernels read
  const PackedParts& parts() const { return parts_; }
  const WeightFormat& format() const { return view_.fmt; }
  int64_t rows() const { return view_.rows; }
  int64_t cols() const { return view_.cols; }
  PackedBytes bytes() const;  // stored bytes of each part
  // Weights the pruner kept; rows·cols − kept() were pruned (stored as the code of 0 in the dense
  // layout, absent in the sparse ones).
  int64_t kept() const { return kept_; }

 private:
  PackedView view_;
  PackedParts parts_;
  std::vector<uint64_t> row_bit_;  // Bitmask: [rows+1] bit offset of each row's codes
  int64_t kept_ = 0;
};

// out row r = w row src_row(r), any layout (Bitmask code streams are re-threaded row by row).
// Used for the RoPE permutation of q/k, which moves whole rows.
PackedWeight permute_packed_rows(const PackedView& w,
                                 const std::function<int64_t(int64_t)>& src_row);

}  // namespace edgellm
