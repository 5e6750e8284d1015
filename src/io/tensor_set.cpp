#include "io/tensor_set.h"

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>

#include "packed/packed_kernels.h"
#include "util/error.h"

namespace edgellm {

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string Tensor::shape_str() const { return fmt::format("[{}]", fmt::join(shape, ", ")); }

namespace {

// 64-byte aligned, zero-filled buffer owned by a shared_ptr (SIMD loads and f32 reinterpretation
// of owned tensors are then always aligned).
std::shared_ptr<uint8_t> aligned_buffer(size_t n) {
  const size_t padded = (n + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, padded == 0 ? 64 : padded);
  if (!p) fail("[tensor] out of memory allocating {} bytes", n);
  std::memset(p, 0, padded == 0 ? 64 : padded);
  return std::shared_ptr<uint8_t>(static_cast<uint8_t*>(p), [](uint8_t* q) { std::free(q); });
}

// Row structure used for conversion: a 1-D tensor is one row.
int64_t row_len(const Tensor& t) { return t.shape.empty() ? 1 : t.shape.back(); }

}  // namespace

Tensor make_owned_tensor(std::string name, DType dtype, std::vector<int64_t> shape) {
  Tensor t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  for (int64_t d : t.shape)
    if (d < 0) fail("[tensor] '{}': negative dimension in {}", t.name, t.shape_str());
  const int64_t n = t.numel();
  const int64_t cols = row_len(t);
  t.nbytes = cols == 0 ? 0 : dtype_row_bytes(dtype, cols) * static_cast<size_t>(n / cols);
  auto buf = aligned_buffer(t.nbytes);
  t.data = buf.get();
  t.owner = buf;
  return t;
}

Tensor make_packed_tensor(std::string name, std::shared_ptr<const PackedWeight> w, int64_t kept) {
  Tensor t;
  t.name = std::move(name);
  t.dtype = DType::Packed;
  t.shape = {w->rows, w->cols};
  t.packed = std::make_shared<const PackedTensor>(PackedTensor::over(*w, kept));
  t.nbytes = t.packed->bytes().total();
  t.owner = std::move(w);
  return t;
}

void decode_tensor_row(const Tensor& t, int64_t r, float* dst) {
  if (t.dtype == DType::Packed) {
    EDGELLM_CHECK(t.packed != nullptr, "packed tensor {} without parts", t.name);
    packed_decode_row(t.packed->view(), r, dst);
    return;
  }
  const int64_t cols = row_len(t);
  decode_row(t.dtype, t.data + static_cast<size_t>(r) * dtype_row_bytes(t.dtype, cols), dst, cols);
}

Tensor to_f32(const Tensor& src) { return convert_tensor(src, DType::F32); }

Tensor convert_tensor(const Tensor& src, DType to) {
  if (to == DType::Packed)
    fail("[tensor] '{}': cannot convert to packed row by row (use compress_linear)", src.name);
  Tensor out = make_owned_tensor(src.name, to, src.shape);
  const int64_t cols = row_len(src);
  if (cols == 0) return out;
  const int64_t rows = src.numel() / cols;
  const size_t out_rb = dtype_row_bytes(to, cols);
  if (src.dtype == to) {
    std::memcpy(const_cast<uint8_t*>(out.data), src.data, out.nbytes);
    return out;
  }
  std::vector<float> row(static_cast<size_t>(cols));
  auto* dst = const_cast<uint8_t*>(out.data);
  for (int64_t r = 0; r < rows; ++r) {
    decode_tensor_row(src, r, row.data());
    encode_row(to, row.data(), dst + static_cast<size_t>(r) * out_rb, cols);
  }
  return out;
}

void TensorSet::add(Tensor t) {
  if (index_.count(t.name)) fail("[tensor] duplicate tensor name '{}'", t.name);
  index_[t.name] = tensors_.size();
  tensors_.push_back(std::move(t));
}

const Tensor* TensorSet::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const Tensor& TensorSet::get(const std::string& name, const std::string& source) const {
  const Tensor* t = find(name);
  if (!t) fail("[{}] missing tensor '{}'", source, name);
  return *t;
}

Tensor& TensorSet::mutable_get(const std::string& name) {
  auto it = index_.find(name);
  if (it == index_.end()) fail("[tensor] missing tensor '{}'", name);
  return tensors_[it->second];
}

}  // namespace edgellm
