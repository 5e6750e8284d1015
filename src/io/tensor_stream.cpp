#include "io/tensor_stream.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "util/error.h"
#include "util/mapped_file.h"

namespace edgellm {

int64_t TensorOut::rows() const {
  const int64_t c = cols();
  if (c == 0) return 0;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n / c;
}

size_t TensorOut::nbytes() const {
  return dtype_row_bytes(dtype, cols()) * static_cast<size_t>(rows());
}

RowMap interleaved_to_hf_rows(int64_t rows, int heads) {
  if (heads <= 0 || rows % heads != 0 || (rows / heads) % 2 != 0)
    fail("[rope] {} rows do not split into {} heads of even size", rows, heads);
  const int64_t hd = rows / heads, half = hd / 2;
  // HF row h*hd + s*half + i holds interleaved row h*hd + 2i + s.
  return [hd, half](int64_t r) {
    const int64_t h = r / hd, k = r % hd, s = k / half, i = k % half;
    return h * hd + 2 * i + s;
  };
}

namespace {

// Shared fill for 1-D tensors with an element map: decode all, reorder, encode.
void fill_vector(const std::function<void(float*)>& decode_all, int64_t n, const RowMap& map,
                 DType to, uint8_t* dst) {
  std::vector<float> v(static_cast<size_t>(n)), p(static_cast<size_t>(n));
  decode_all(v.data());
  for (int64_t i = 0; i < n; ++i) p[i] = v[map(i)];
  encode_row(to, p.data(), dst, n);
}

}  // namespace

TensorOut tensor_out(const Tensor& src, DType to, std::string out_name, RowMap map) {
  TensorOut o;
  o.name = std::move(out_name);
  o.dtype = to;
  o.shape = src.shape;
  const int64_t cols = o.cols();
  const Tensor s = src;  // keeps the source's owner alive as long as the TensorOut
  if (src.dtype == DType::Packed) {
    // Re-encode (e.g. GGUF export of a compressed model): one decoded row at a time.
    if (to == DType::Packed)
      fail("[write] tensor '{}': packed parts are written by packed_tensor_outs", src.name);
    const size_t out_rb = dtype_row_bytes(to, cols);
    // A symmetric grid whose groups cover whole 32-blocks is a Q8_0 (b <= 8) or Q4_0 (b <= 4)
    // grid with the same scales: encoding with the packed scales is then exact (no second
    // rounding).
    const WeightFormat& f = src.packed->format();
    const int64_t gc = f.group_cols(cols), ng = f.n_groups(cols);
    const bool same_grid =
        f.quantized() && f.scheme == QuantScheme::Sym && gc % 32 == 0 &&
        ((to == DType::Q8_0 && f.bits <= 8) || (to == DType::Q4_0 && f.bits <= 4));
    o.fill = [s, cols, out_rb, to, map, same_grid, gc, ng](int64_t r0, int64_t r1, uint8_t* dst) {
#pragma omp parallel
      {
        std::vector<float> row(static_cast<size_t>(cols));
        std::vector<uint16_t> d(static_cast<size_t>(cols / 32));
#pragma omp for schedule(static)
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t sr = map ? map(r) : r;
          decode_tensor_row(s, sr, row.data());
          uint8_t* out = dst + static_cast<size_t>(r - r0) * out_rb;
          if (!same_grid) {
            encode_row(to, row.data(), out, cols);
            continue;
          }
          const uint16_t* sc = s.packed->view().scales + sr * ng;
          for (size_t i = 0; i < d.size(); ++i) d[i] = sc[int64_t(i) * 32 / gc];
          encode_row_with_scales(to, row.data(), d.data(), out, cols);
        }
      }
    };
    return o;
  }
  const size_t in_rb = dtype_row_bytes(src.dtype, cols), out_rb = dtype_row_bytes(to, cols);
  if (map && src.shape.size() == 1) {
    o.fill = [s, cols, map, to](int64_t, int64_t, uint8_t* dst) {
      fill_vector([&](float* v) { decode_row(s.dtype, s.data, v, cols); }, cols, map, to, dst);
    };
    return o;
  }
  o.fill = [s, cols, in_rb, out_rb, to, map](int64_t r0, int64_t r1, uint8_t* dst) {
    auto src_row = [&](int64_t r) {
      return s.data + static_cast<size_t>(map ? map(r) : r) * in_rb;
    };
    if (s.dtype == to) {
      if (!map) {
        std::memcpy(dst, src_row(r0), static_cast<size_t>(r1 - r0) * in_rb);
      } else {
        for (int64_t r = r0; r < r1; ++r)
          std::memcpy(dst + static_cast<size_t>(r - r0) * out_rb, src_row(r), in_rb);
      }
      return;
    }
#pragma omp parallel
    {
      std::vector<float> row(static_cast<size_t>(cols));
#pragma omp for schedule(static)
      for (int64_t r = r0; r < r1; ++r) {
        decode_row(s.dtype, src_row(r), row.data(), cols);
        encode_row(to, row.data(), dst + static_cast<size_t>(r - r0) * out_rb, cols);
      }
    }
  };
  return o;
}

TensorOut generated_tensor_out(std::string name, DType to, std::vector<int64_t> shape, RowGen gen,
                               RowMap map) {
  TensorOut o;
  o.name = std::move(name);
  o.dtype = to;
  o.shape = std::move(shape);
  const int64_t cols = o.cols();
  const size_t out_rb = dtype_row_bytes(to, cols);
  if (map && o.shape.size() == 1) {
    o.fill = [gen, cols, map, to](int64_t, int64_t, uint8_t* dst) {
      fill_vector([&](float* v) { gen(0, v); }, cols, map, to, dst);
    };
    return o;
  }
  o.fill = [gen, cols, out_rb, to, map](int64_t r0, int64_t r1, uint8_t* dst) {
#pragma omp parallel
    {
      std::vector<float> row(static_cast<size_t>(cols));
#pragma omp for schedule(static)
      for (int64_t r = r0; r < r1; ++r) {
        gen(map ? map(r) : r, row.data());
        encode_row(to, row.data(), dst + static_cast<size_t>(r - r0) * out_rb, cols);
      }
    }
  };
  return o;
}

void write_tensor_data(AtomicWriter& w, const std::vector<TensorOut>& outs, uint64_t alignment) {
  constexpr size_t kChunk = size_t{64} << 20;
  std::vector<uint8_t> buf;
  for (const TensorOut& o : outs) {
    if (alignment > 1) w.pad_to(alignment);
    const int64_t rows = o.rows();
    if (rows == 0) continue;
    if (o.bytes) {
      w.write(o.bytes, o.nbytes());
      continue;
    }
    if (o.read) {
      constexpr size_t kSlice = size_t{4} << 20;
      const size_t total = o.nbytes();
      buf.resize(std::min(kSlice, total));
      for (size_t off = 0; off < total; off += kSlice) {
        const size_t n = std::min(kSlice, total - off);
        o.read(off, n, buf.data());
        w.write(buf.data(), n);
      }
      continue;
    }
    const size_t rb = dtype_row_bytes(o.dtype, o.cols());
    const int64_t per =
        std::max<int64_t>(1, static_cast<int64_t>(kChunk / std::max<size_t>(rb, 1)));
    for (int64_t r0 = 0; r0 < rows; r0 += per) {
      const int64_t r1 = std::min(rows, r0 + per);
      buf.resize(static_cast<size_t>(r1 - r0) * rb);
      o.fill(r0, r1, buf.data());
      w.write(buf.data(), buf.size());
    }
  }
}

}  // namespace edgellm
