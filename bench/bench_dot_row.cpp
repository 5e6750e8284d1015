// Decode-GEMV inner loop per storage type: the fast dot_row vs its scalar reference
// dot_row_ref, side by side in one run (1024 rows × 4096 values, single thread, best of 5); for
// the block-quantized types also the integer GEMV on 8-bit activations (simd qdot): the
// portable int16 kernel and, where the CPU has it, the AVX512-VNNI one. Then the packed (LUC)
// layouts: the fp32-activation GEMV (packed_gemv) vs the 8-bit one (packed_gemv_qx, where the
// CPU has AVX512-VNNI/VBMI/VBMI2), dense and 50 % bitmask-sparse rows. Figures are recorded in
// docs/formats.md, docs/simd.md and docs/compression.md.   bench_dot_row
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "packed/packed_kernels.h"
#include "packed/packed_weight.h"
#include "simd/simd.h"
#include "tensor/dtype.h"

using namespace edgellm;

int main() {
  const int64_t n = 4096, rows = std::getenv("ROWS") ? std::atoll(std::getenv("ROWS")) : 1024;
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> w(n * rows), x(n);
  for (auto& v : w) v = nd(rng);
  for (auto& v : x) v = nd(rng);
  for (DType t :
       {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    const size_t rb = dtype_row_bytes(t, n);
    std::vector<uint8_t> m(rb * rows);
    for (int64_t r = 0; r < rows; ++r) encode_row(t, &w[r * n], m.data() + r * rb, n);
    auto time = [&](auto fn) {
      volatile float sink = 0;
      double best = 1e30;
      for (int rep = 0; rep < 5; ++rep) {
        auto t0 = std::chrono::steady_clock::now();
        for (int64_t r = 0; r < rows; ++r) sink = sink + fn(t, m.data() + r * rb, x.data(), n);
        best = std::min(
            best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      return best;
    };
    const double fast = time(dot_row), ref = time(dot_row_ref);
    std::printf("%-5s fast %.3f ms (%.1f GB/s, %.2f Gval/s)  ref %.3f ms  speedup %.1fx\n",
                dtype_name(t), fast * 1e3, rb * rows / fast / 1e9, n * rows / fast / 1e9, ref * 1e3,
                ref / fast);
    const simd::QdotFn portable =
        dot_qx_kernel(t) ? simd::qdot_portable_kernel(*dot_kind(t)) : nullptr;
    if (!portable) continue;
    QuantizedActivations qx;
    qx.quantize(x.data(), n);
    const simd::QuantX xv = qx.view();
    auto time_q = [&](simd::QdotFn f) {
      return time([&](DType, const void* row, const float*, int64_t k) { return f(row, xv, k); });
    };
    const double tp = time_q(portable);
    std::printf("      qdot portable %.3f ms (%.1f GB/s)", tp * 1e3, rb * rows / tp / 1e9);
    if (const simd::QdotFn vnni = simd::qdot_vnni_kernel(*dot_kind(t))) {
      const double tv = time_q(vnni);
      std::printf("  vnni %.3f ms (%.1f GB/s, %.2fx portable)", tv * 1e3, rb * rows / tv / 1e9,
                  tp / tv);
    }
    std::printf("\n");
  }
  // Packed rows: random codes, per-row fp16 scales, and for the sparse layout a random mask.
  for (const char* name :
       {"b4-sym-row", "b5-sym-row", "b4-asym-g128", "b4-sym-row-bitmask", "b5-sym-row-bitmask"}) {
    QuantizedMatrix q;
    q.fmt = WeightFormat::parse(name, "bench");
    q.rows = rows;
    q.cols = n;
    q.scales.assign(static_cast<size_t>(rows * q.n_groups()), f16_to_f32(f32_to_f16(0.01f)));
    if (q.fmt.scheme == QuantScheme::Asym) q.zeros.assign(q.scales.size(), 8);
    q.codes.resize(static_cast<size_t>(rows * n));
    const uint32_t top = q.fmt.max_code() - (q.fmt.scheme == QuantScheme::Sym ? 1 : 0);
    for (auto& c : q.codes) c = static_cast<uint16_t>(rng() % (top + 1));
    if (q.fmt.sparse == SparseFormat::Bitmask) {
      q.kept.resize(q.codes.size());
      for (size_t i = 0; i < q.kept.size(); ++i) {
        q.kept[i] = rng() % 2;
        if (!q.kept[i]) q.codes[i] = static_cast<uint16_t>(q.fmt.zero_code(8));
      }
    }
    const PackedWeight p = pack(q);
    const PackedView v = p.view();
    std::vector<float> y(rows);
    auto time_gemv = [&](auto fn) {
      double best = 1e30;
      for (int rep = 0; rep < 5; ++rep) {
        auto t0 = std::chrono::steady_clock::now();
        fn();
        best = std::min(
            best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      return best;
    };
    const double bytes = double(p.bytes().total());
    const double tf = time_gemv([&] { packed_gemv(v, x.data(), y.data(), false, 0, rows); });
    std::printf("%-19s %.2f bits/w  fp32-x %.3f ms (%.1f GB/s)", name, 8 * bytes / (rows * n),
                tf * 1e3, bytes / tf / 1e9);
    if (const PackedQxKernels k = packed_gemv_qx_kernels(v)) {
      QuantizedActivations qx;
      qx.quantize(x.data(), n);
      const double tq =
          time_gemv([&] { packed_gemv_qx(v, k, qx.view(), y.data(), false, 0, rows); });
      std::printf("  int8-x vnni %.3f ms (%.1f GB/s, %.2fx)", tq * 1e3, bytes / tq / 1e9, tf / tq);
    }
    std::printf("\n");
  }
}
