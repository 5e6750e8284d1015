// Streaming tensor output: writers (safetensors, GGUF) take a list of TensorOut whose sizes are
// known up front (headers first) and whose bytes are produced a chunk of rows at a time, so a
// 7B F32 model can be written (make-model, convert) without holding it in memory.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/tensor_set.h"

namespace edgellm {

struct TensorOut {
  std::string name;            // name as stored in the output file
  DType dtype = DType::F32;    // stored type
  std::vector<int64_t> shape;  // outermost first (tensor_set.h conventions)
  // Fills rows [r0, r1) (a 1-D tensor is a single row) encoded as `dtype` into dst, which holds
  // (r1 - r0) * dtype_row_bytes(dtype, cols) bytes.
  std::function<void(int64_t r0, int64_t r1, uint8_t* dst)> fill;
  // When set: the tensor's bytes exactly as stored (nbytes() of them), written straight from
  // here without a staging buffer. A large 1-D tensor (an optimizer state of hundreds of MB) is
  // one row, so `fill` would stage all of it at once.
  const uint8_t* bytes = nullptr;
  // When set (and bytes is not): reads the tensor's stored bytes [off, off + n) into dst; the
  // writer streams them through a small buffer. For state that lives in a file, not in memory
  // (offloaded optimizer moments), so writing it never makes it resident whole.
  std::function<void(uint64_t off, size_t n, uint8_t* dst)> read;

  int64_t cols() const { return shape.empty() ? 1 : shape.back(); }
  int64_t rows() const;
  size_t nbytes() const;
};

// Output row -> source row (a reordering of rows, e.g. the RoPE layout change); empty = identity.
// For a 1-D tensor it reorders elements.
using RowMap = std::function<int64_t(int64_t)>;

// A TensorOut reading `src`, re-encoded to `to` (bytes copied as-is when the dtype matches, so
// quantized tensors pass through bit-exactly), rows reordered by `map`.
TensorOut tensor_out(const Tensor& src, DType to, std::string out_name, RowMap map = {});

// A TensorOut whose source rows are produced by `gen(row, dst)` as f32 (e.g. random weights);
// `gen` must be thread-safe (rows are generated in parallel).
using RowGen = std::function<void(int64_t row, float* dst)>;
TensorOut generated_tensor_out(std::string name, DType to, std::vector<int64_t> shape, RowGen gen,
                               RowMap map = {});

// RoPE layout change as a row map: output in the HF/NeoX rotate-halves layout, source in the
// interleaved layout, `rows` rows in `heads` heads.
RowMap interleaved_to_hf_rows(int64_t rows, int heads);

// Writes every tensor of `outs` to `w` in order, chunk by chunk (about 64 MiB of rows at a time),
// padding each tensor's start to `alignment` bytes (1 = packed).
class AtomicWriter;
void write_tensor_data(AtomicWriter& w, const std::vector<TensorOut>& outs, uint64_t alignment);

}  // namespace edgellm
