// dot(decode(row), x) for every storage type: the inner loop of the decode-time GEMV over stored
// weights. Each type has a SIMD kernel (src/simd/dot_kernels.cpp, dispatched at run time to the
// CPU's best target) that unpacks codes straight into fp32 lanes (no temporary row), and every
// type shares one portable fallback (decode a block into a stack buffer,
// then dot) that is also the reference the tests compare against (dot_row_ref).
//
// Numerics: the fast kernels multiply codes by x in fp32 and apply each (sub-)block scale once
// to the partial sum, so they differ from decode-then-dot only by rounding order.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <vector>

#include "simd/simd.h"
#include "tensor/dtype.h"
#include "tensor/quant_blocks.h"
#include "util/error.h"

namespace edgellm {

float dot_row_ref(DType t, const void* row, const float* x, int64_t n) {
  // Decode in chunks of whole blocks (256 values = one K-quant super-block, 8 Q8_0 blocks).
  const int64_t chunk = 256;
  const size_t chunk_bytes = dtype_row_bytes(t, chunk);
  const auto* p = static_cast<const uint8_t*>(row);
  float buf[256];
  double acc = 0.0;
  for (int64_t i = 0; i < n; i += chunk) {
    const int64_t m = n - i < chunk ? n - i : chunk;
    decode_row(t, p + static_cast<size_t>(i / chunk) * chunk_bytes, buf, m);
    for (int64_t j = 0; j < m; ++j) acc += static_cast<double>(buf[j]) * x[i + j];
  }
  return static_cast<float>(acc);
}

std::optional<simd::DotKind> dot_kind(DType t) {
  switch (t) {
    case DType::F32:
      return simd::DotKind::F32;
    case DType::F16:
      return simd::DotKind::F16;
    case DType::BF16:
      return simd::DotKind::BF16;
    case DType::Q8_0:
      return simd::DotKind::Q8_0;
    case DType::Q4_0:
      return simd::DotKind::Q4_0;
    case DType::Q4_K:
      return simd::DotKind::Q4_K;
    case DType::Q6_K:
      return simd::DotKind::Q6_K;
    case DType::I32:
    case DType::U8:
    case DType::Packed:
      break;
  }
  return std::nullopt;
}

DotRowFn dot_row_kernel(DType t) {
  const auto k = dot_kind(t);
  return k ? simd::dot_row_kernel(*k) : nullptr;
}

float dot_row(DType t, const void* row, const float* x, int64_t n) {
  const void* w = row;
  switch (t) {
    case DType::F32:
      return simd::dot_f32(static_cast<const float*>(w), x, n);
    case DType::F16:
      return simd::dot_f16(w, x, n);
    case DType::BF16:
      return simd::dot_bf16(w, x, n);
    case DType::Q8_0:
      EDGELLM_CHECK(n % 32 == 0, "dot_row q8_0: n={}", n);
      return simd::dot_q8_0(w, x, n / 32);
    case DType::Q4_0:
      EDGELLM_CHECK(n % 32 == 0, "dot_row q4_0: n={}", n);
      return simd::dot_q4_0(w, x, n / 32);
    case DType::Q4_K:
      EDGELLM_CHECK(n % 256 == 0, "dot_row q4_k: n={}", n);
      return simd::dot_q4_k(w, x, n / 256);
    case DType::Q6_K:
      EDGELLM_CHECK(n % 256 == 0, "dot_row q6_k: n={}", n);
      return simd::dot_q6_k(w, x, n / 256);
    case DType::I32:
    case DType::U8:
    case DType::Packed:  // dot_row_ref -> decode_row refuses it
      break;
  }
  return dot_row_ref(t, row, x, n);
}

bool QuantizedActivations::quantize(const float* x, int64_t n) {
  EDGELLM_CHECK(n % 32 == 0, "quantize_activations: n={} is not a multiple of 32", n);
  const int64_t nb = n / 32;
  q.resize(static_cast<size_t>(n));
  d.resize(static_cast<size_t>(nb));
  s.resize(static_cast<size_t>(nb));
  ds.resize(static_cast<size_t>(nb + 1));
  d8.resize(static_cast<size_t>(8 * nb));
  ds[0] = 0;
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x + 32 * b;
    float amax = 0.f;
    for (int j = 0; j < 32; ++j) {
      if (!std::isfinite(xb[j])) return false;  // NaN/Inf: the caller keeps fp32 activations
      amax = std::max(amax, std::fabs(xb[j]));
    }
    // Below 1e-30 (127/amax would overflow near 1e-37) the block is taken as zero: its share of
    // a dot product is below fp32 resolution of any non-trivial row anyway.
    if (amax < 1e-30f) amax = 0.f;
    const float scale = amax / 127.f;
    const float inv = amax > 0.f ? 127.f / amax : 0.f;
    int32_t sum = 0;
    for (int j = 0; j < 32; ++j) {
      // |x·inv| <= 127 up to rounding; the clamp keeps a rounding of 127.00001 in range.
      const auto v = static_cast<int8_t>(std::clamp(std::nearbyint(xb[j] * inv), -127.f, 127.f));
      q[static_cast<size_t>(32 * b + j)] = v;
      sum += v;
    }
    d[static_cast<size_t>(b)] = scale;
    s[static_cast<size_t>(b)] = sum;
    ds[static_cast<size_t>(b + 1)] = ds[static_cast<size_t>(b)] + double(scale) * sum;
    std::fill_n(d8.begin() + 8 * b, 8, scale);
  }
  return true;
}

simd::QdotFn dot_qx_kernel(DType t) {
  const auto k = dot_kind(t);
  return k ? simd::qdot_kernel(*k) : nullptr;  // nullptr for the float kinds
}

double dot_qx_ref(DType t, const void* row, const QuantizedActivations& x, int64_t n) {
  std::vector<float> w(static_cast<size_t>(n));
  decode_row(t, row, w.data(), n);
  double acc = 0.0;
  for (int64_t i = 0; i < n; ++i)
    acc += static_cast<double>(w[static_cast<size_t>(i)]) * x.d[static_cast<size_t>(i / 32)] *
           x.q[static_cast<size_t>(i)];
  return acc;
}

}  // namespace edgellm
