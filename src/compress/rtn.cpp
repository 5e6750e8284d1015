#include "compress/rtn.h"

#include <algorithm>
#include <cmath>

#include "tensor/dtype.h"
#include "util/error.h"

namespace edgellm {

float f16_round_up(float x) {
  uint16_t h = f32_to_f16(x);
  if (f16_to_f32(h) < x) ++h;  // positive fp16 bit patterns are ordered like their values
  const float r = f16_to_f32(h);
  if (!std::isfinite(r)) fail("[quantize] scale {} does not fit in fp16", x);
  return r;
}

QuantGrid fit_grid(const WeightFormat& f, const float* v, int64_t n, int64_t stride) {
  QuantGrid g;
  if (f.scheme == QuantScheme::Sym) {
    float amax = 0;
    for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::abs(v[i * stride]));
    g.scale = f16_round_up(amax / float((1 << (f.bits - 1)) - 1));
    return g;
  }
  float lo = 0, hi = 0;  // the grid always contains 0, so pruned weights stay exactly 0
  for (int64_t i = 0; i < n; ++i) {
    lo = std::min(lo, v[i * stride]);
    hi = std::max(hi, v[i * stride]);
  }
  const int maxq = (1 << f.bits) - 1;
  g.scale = f16_round_up((hi - lo) / float(maxq));
  if (g.scale > 0)
    g.zero = static_cast<uint8_t>(std::clamp<float>(std::round(-lo / g.scale), 0.f, float(maxq)));
  return g;
}

uint16_t quantize_value(const WeightFormat& f, const QuantGrid& g, float v) {
  if (!f.quantized()) return f32_to_f16(v);
  const int off = f.scheme == QuantScheme::Sym ? (1 << (f.bits - 1)) - 1 : g.zero;
  if (g.scale == 0) return static_cast<uint16_t>(off);
  const int maxc = static_cast<int>(f.max_code()) - (f.scheme == QuantScheme::Sym ? 1 : 0);
  const int c = static_cast<int>(std::round(v / g.scale)) + off;
  return static_cast<uint16_t>(std::clamp(c, 0, maxc));
}

float dequantize_code(const WeightFormat& f, const QuantGrid& g, uint16_t code) {
  if (!f.quantized()) return f16_to_f32(code);
  const int off = f.scheme == QuantScheme::Sym ? (1 << (f.bits - 1)) - 1 : g.zero;
  return g.scale * static_cast<float>(int(code) - off);
}

QuantizedMatrix quantize_rtn(const float* w, int64_t rows, int64_t cols, const WeightFormat& f,
                             const std::vector<uint8_t>* kept) {
  f.validate("quantize_rtn");
  QuantizedMatrix q;
  q.fmt = f;
  q.rows = rows;
  q.cols = cols;
  const int64_t ng = f.n_groups(cols), gc = f.group_cols(cols);
  q.codes.resize(static_cast<size_t>(rows * cols));
  q.scales.resize(static_cast<size_t>(rows * ng));
  if (f.quantized() && f.scheme == QuantScheme::Asym) q.zeros.resize(q.scales.size());
  if (kept) q.kept = *kept;
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c)
      row[c] = (!kept || (*kept)[r * cols + c]) ? w[r * cols + c] : 0.f;
    if (!f.quantized()) {
      for (int64_t c = 0; c < cols; ++c) q.codes[r * cols + c] = f32_to_f16(row[c]);
      continue;
    }
    for (int64_t g = 0; g < ng; ++g) {
      const int64_t c0 = g * gc, n = std::min(gc, cols - c0);
      const QuantGrid grid = fit_grid(f, row.data() + c0, n);
      q.scales[r * ng + g] = grid.scale;
      if (!q.zeros.empty()) q.zeros[r * ng + g] = grid.zero;
      for (int64_t c = c0; c < c0 + n; ++c) q.codes[r * cols + c] = quantize_value(f, grid, row[c]);
    }
  }
  return q;
}

}  // namespace edgellm
