// Packed weights: format descriptor, exact byte accounting, bit-exact round trips, and every
// packed kernel against its scalar reference (packed_ref.h) on odd shapes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/gemm_bf16.h"
#include "kernels/packed_matmul.h"
#include "packed/packed_kernels.h"
#include "packed/packed_ref.h"
#include "packed/packed_weight.h"
#include "packed/random_packed.h"
#include "tensor/dtype.h"
#include "util/error.h"
#include "util/rng.h"

namespace edgellm {
namespace {

std::vector<WeightFormat> formats() {
  std::vector<WeightFormat> out;
  for (int bits : {2, 3, 4, 5, 6, 7, 8, 16})
    for (int group : {0, 8, 32, 64, 128})
      for (QuantScheme sch : {QuantScheme::Sym, QuantScheme::Asym})
        for (int sp = 0; sp < 4; ++sp) {
          if (bits == 16 && (group != 0 || sch == QuantScheme::Asym)) continue;
          WeightFormat f;
          f.bits = bits;
          f.group = group;
          f.scheme = sch;
          f.sparse = sp == 0   ? SparseFormat::None
                     : sp == 1 ? SparseFormat::Bitmask
                               : SparseFormat::NM;
          if (sp == 2) f.nm_n = 2, f.nm_m = 4;
          if (sp == 3) f.nm_n = 4, f.nm_m = 8;
          out.push_back(f);
        }
  return out;
}

TEST(WeightFormat, NameRoundTripsAndBadInputFails) {
  for (const WeightFormat& f : formats()) {
    EXPECT_EQ(WeightFormat::parse(f.name(), "test"), f) << f.name();
  }
  EXPECT_EQ(WeightFormat::parse("b4-asym-g128-bitmask", "t").group, 128);
  EXPECT_EQ(WeightFormat::parse("b3-sym-row-nm2:4", "t").nm_m, 4);
  for (const char* bad : {"", "b1-sym-row", "b9-sym-row", "b4-sym", "b4-foo-row", "b4-sym-g12",
                          "b4-sym-row-nm4:4", "b16-asym-row", "b4-sym-row-bitmask-x", "q4"})
    EXPECT_THROW(WeightFormat::parse(bad, "test"), Error) << bad;
}

TEST(PackedWeight, BytesMatchHandCount) {
  WeightFormat f;  // 4-bit sym per row: 4096 columns = 2048 code bytes + one fp16 scale per row
  f.bits = 4;
  PackedBytes b = packed_bytes(f, 10, 4096, 0);
  EXPECT_EQ(b.codes, 10u * 2048);
  EXPECT_EQ(b.scales, 10u * 2);
  EXPECT_EQ(b.zeros, 0u);
  EXPECT_DOUBLE_EQ(b.bits_per_weight(10, 4096), 4.0 + 16.0 / 4096);
  f.bits = 3;  // 3-bit asym g128 on 100 columns: ceil(300/8)=38 code bytes, 1 group of 100
  f.scheme = QuantScheme::Asym;
  f.group = 128;
  b = packed_bytes(f, 2, 100, 0);
  EXPECT_EQ(b.codes, 2u * 38);
  EXPECT_EQ(b.scales, 2u * 2);
  EXPECT_EQ(b.zeros, 2u);
  f.sparse = SparseFormat::Bitmask;  // 77 kept 3-bit codes in one stream: 29 bytes; masks 13/row
  b = packed_bytes(f, 2, 100, 77);
  EXPECT_EQ(b.codes, 29u);
  EXPECT_EQ(b.index, 2u * 13);
  f.sparse = SparseFormat::NM;  // 2:4 on 100 cols: 50 slots · 3 bits = 19 B, 50 · 2 bits = 13 B
  f.nm_n = 2;
  f.nm_m = 4;
  b = packed_bytes(f, 2, 100, 0);
  EXPECT_EQ(b.codes, 2u * 19);
  EXPECT_EQ(b.index, 2u * 13);
}

TEST(PackedWeight, RoundTripIsBitExactForEveryFormat) {
  Rng rng(7);
  for (const WeightFormat& f : formats())
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{3, 37}, {5, 130}, {1, 8}, {4, 257}}) {
      const QuantizedMatrix q = random_q(f, rows, cols, 0.6, rng);
      const PackedWeight p = pack(q);
      p.validate("roundtrip");
      EXPECT_EQ(p.bytes().total(), packed_bytes(p.fmt, rows, cols, q.nnz()).total()) << f.name();
      const QuantizedMatrix u = unpack(p.view());
      // Values identical, bit for bit.
      const auto a = q.dequantize(), b = u.dequantize();
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i)
        ASSERT_EQ(a[i], b[i]) << f.name() << " " << rows << "x" << cols << " at " << i;
      if (p.fmt.sparse == SparseFormat::Bitmask) {
        EXPECT_EQ(u.kept, q.kept) << f.name();
      }
      if (p.fmt.sparse == SparseFormat::None) {
        EXPECT_EQ(u.codes, q.codes) << f.name();
      }
      // Re-packing reproduces the bytes.
      const PackedWeight p2 = pack(u);
      EXPECT_EQ(p2.fmt, p.fmt);
      EXPECT_EQ(p2.codes, p.codes) << f.name();
      EXPECT_EQ(p2.index, p.index) << f.name();
      EXPECT_EQ(p2.scales, p.scales);
      EXPECT_EQ(p2.zeros, p.zeros);
    }
}

TEST(PackedWeight, StoresSparseOnlyWhenSmaller) {
  Rng rng(3);
  WeightFormat f;
  f.bits = 2;
  f.sparse = SparseFormat::Bitmask;
  // 2-bit at ~10% sparsity: (0.9·2 + 1) bits > 2 bits: dense.
  EXPECT_EQ(pack(random_q(f, 8, 256, 0.1, rng)).fmt.sparse, SparseFormat::None);
  f.bits = 8;  // 8-bit at ~50%: 0.5·8 + 1 = 5 bits < 8: bitmask.
  EXPECT_EQ(pack(random_q(f, 8, 256, 0.5, rng)).fmt.sparse, SparseFormat::Bitmask);
  f.bits = 2;  // 4:8 at 2 bits: 0.5·(2 + 3) = 2.5 > 2: dense.
  f.sparse = SparseFormat::NM;
  f.nm_n = 4;
  f.nm_m = 8;
  EXPECT_EQ(pack(random_q(f, 8, 256, 0, rng)).fmt.sparse, SparseFormat::None);
  f.bits = 4;  // 2:4 at 4 bits: 0.5·(4 + 2) = 3 < 4: N:M.
  f.nm_n = 2;
  f.nm_m = 4;
  EXPECT_EQ(pack(random_q(f, 8, 256, 0, rng)).fmt.sparse, SparseFormat::NM);
}

TEST(PackedWeight, NmPackRejectsBrokenPattern) {
  WeightFormat f;
  f.bits = 4;
  f.sparse = SparseFormat::NM;
  f.nm_n = 2;
  f.nm_m = 4;
  Rng rng(1);
  QuantizedMatrix q = random_q(f, 2, 16, 0, rng);
  for (int j = 0; j < 4; ++j) q.kept[j] = 1;  // 4 of the first 4 kept
  EXPECT_THROW(pack(q), Error);
}

// Every kernel against the scalar reference, on shapes that are not multiples of anything.
TEST(PackedKernels, MatchScalarReferenceOnOddShapes) {
  Rng rng(11);
  for (const WeightFormat& f : formats())
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{67, 37}, {3, 203}, {70, 130}}) {
      const QuantizedMatrix q = random_q(f, rows, cols, 0.55, rng);
      const PackedWeight p = pack(q);
      const PackedView v = p.view();
      const auto wq = q.dequantize();
      std::vector<float> row(cols), row_ref(cols);
      for (int64_t r = 0; r < rows; ++r) {
        packed_decode_row(v, r, row.data());
        ref::packed_decode_row<float>(v, r, row_ref.data());
        for (int64_t c = 0; c < cols; ++c) {
          ASSERT_EQ(row[c], row_ref[c]) << p.fmt.name() << " r" << r << " c" << c;
          ASSERT_EQ(row[c], wq[r * cols + c]) << p.fmt.name();
        }
      }
      for (int64_t T : {1, 3}) {
        std::vector<float> x(T * cols), y(T * rows, 0.5f), dy(T * rows), dx(T * cols, 0.25f);
        for (float& e : x) e = float(rng.normal());
        for (float& e : dy) e = float(rng.normal());
        std::vector<double> xd(x.begin(), x.end()), dyd(dy.begin(), dy.end()), yd(T * rows),
            dxd(T * cols, 0.25);
        ref::packed_matmul<double>(xd.data(), v, yd.data(), T);
        ref::packed_matmul_backward<double>(dxd.data(), dyd.data(), v, T);
        // The fp32 path here; the bf16 path (T > 1 where this CPU has it) below.
        const Bf16GemmPath native = bf16_gemm_path();
        set_bf16_gemm_path(Bf16GemmPath::Fp32);
        packed_matmul(x.data(), v, y.data(), T, /*accumulate=*/true);
        set_bf16_gemm_path(native);
        if (T > 1 && native == Bf16GemmPath::Dnnl) {
          const std::vector<double> yb = bf16_packed_matmul_ref(x.data(), v, T);
          std::vector<float> y16(T * rows, 0.5f);
          packed_matmul(x.data(), v, y16.data(), T, /*accumulate=*/true);
          for (int64_t i = 0; i < T * rows; ++i)
            ASSERT_NEAR(y16[i], 0.5 + yb[i], 1e-4 * (1 + std::abs(yb[i]))) << p.fmt.name();
        }
        packed_matmul_backward(dx.data(), dy.data(), v, T);
        // Tolerance from the magnitude of the terms summed (fp32 accumulation).
        for (int64_t t = 0; t < T; ++t)
          for (int64_t n = 0; n < rows; ++n) {
            double mag = 0;
            for (int64_t k = 0; k < cols; ++k)
              mag += std::abs(double(wq[n * cols + k]) * x[t * cols + k]);
            ASSERT_NEAR(y[t * rows + n], 0.5 + yd[t * rows + n], 1e-5 * (mag + 1))
                << p.fmt.name() << " T" << T;
          }
        for (int64_t i = 0; i < T * cols; ++i)
          ASSERT_NEAR(dx[i], dxd[i], 1e-4 * (1 + std::abs(dxd[i]))) << p.fmt.name() << " T" << T;
        if (T == 1) {
          for (int64_t r = 0; r < rows; ++r)
            ASSERT_NEAR(packed_dot_row(v, r, x.data()), yd[r], 1e-4 * (1 + std::abs(yd[r])));
        }
      }
    }
}

// The decode GEMV on 8-bit activations (simd packed_vnni.cpp) against the decoded row times the
// dequantized activations, in double: dense and bitmask rows of every bit width, per-row and
// 32/64/128-column groups (a short last group included), masks from empty to full blocks.
TEST(PackedKernels, IntegerDecodeMatchesReference) {
  if (!simd::packed_qdot_vnni_kernel() || !simd::packed_mask_qdot_vnni_kernel())
    GTEST_SKIP() << "this CPU has no AVX512-VNNI/VBMI/VBMI2: decode keeps fp32 activations";
  Rng rng(12);
  int sparse_seen = 0;
  for (const WeightFormat& f : formats()) {
    if (!f.quantized() || f.sparse == SparseFormat::NM || f.group == 8) continue;
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{9, 96}, {5, 320}})
      for (double p : {0.1, 0.55, 0.97}) {
        const PackedWeight pw = pack(random_q(f, rows, cols, p, rng));
        const PackedView v = pw.view();
        sparse_seen += pw.fmt.sparse == SparseFormat::Bitmask;
        const PackedQxKernels k = packed_gemv_qx_kernels(v);
        ASSERT_TRUE(k) << pw.fmt.name();
        std::vector<float> x(cols);
        for (float& e : x) e = float(rng.normal());
        x[5] = 0;  // a zero and a block of zeros (scale 0)
        std::fill(x.begin() + 32, x.begin() + 64, 0.f);
        QuantizedActivations qx;
        ASSERT_TRUE(qx.quantize(x.data(), cols));
        std::vector<float> y(rows, 0.5f), y_mm(rows, 0.5f);
        packed_gemv_qx(v, k, qx.view(), y.data(), /*accumulate=*/true, 0, rows);
        packed_matmul(x.data(), v, y_mm.data(), 1, /*accumulate=*/true);  // the decode path
        std::vector<double> w(cols);
        const int64_t ng = v.fmt.n_groups(cols), gc = v.fmt.group_cols(cols);
        for (int64_t r = 0; r < rows; ++r) {
          ref::packed_decode_row<double>(v, r, w.data());
          // The kernel sums code·q and off·q as integers (exact) and adds them in fp32 per lane:
          // its rounding scales with both magnitudes, the offsets' included.
          double want = 0, mag = 0;
          for (int64_t c = 0; c < cols; ++c) {
            const double xc = double(qx.d[c / 32]) * qx.q[c];
            const int64_t g = r * ng + c / gc;
            const int off = v.zeros ? v.zeros[g] : (1 << (v.fmt.bits - 1)) - 1;
            want += w[c] * xc;
            mag += std::abs(w[c] * xc) + std::abs(f16_to_f32(v.scales[g]) * off * xc);
          }
          ASSERT_NEAR(y[r], 0.5 + want, 1e-5 * (mag + 1)) << pw.fmt.name() << " p" << p;
          ASSERT_EQ(y_mm[r], y[r]) << pw.fmt.name();
        }
      }
  }
  EXPECT_GT(sparse_seen, 20);  // the bitmask kernel was exercised
}

TEST(PackedKernels, IntegerDecodeOnlyForWholeBlocks) {
  Rng rng(13);
  WeightFormat f;
  f.bits = 4;
  f.group = 32;
  EXPECT_FALSE(packed_gemv_qx_kernels(pack(random_q(f, 3, 100, 0, rng)).view()));  // cols % 32
  f.group = 48;
  EXPECT_FALSE(packed_gemv_qx_kernels(pack(random_q(f, 3, 96, 0, rng)).view()));  // group % 32
  f.group = 32;
  f.sparse = SparseFormat::NM;
  f.nm_n = 2, f.nm_m = 4;
  EXPECT_FALSE(packed_gemv_qx_kernels(pack(random_q(f, 3, 96, 0.5, rng)).view()));
  f.bits = 16, f.group = 0, f.sparse = SparseFormat::None, f.nm_n = 0, f.nm_m = 0;
  EXPECT_FALSE(packed_gemv_qx_kernels(pack(random_q(f, 3, 96, 0, rng)).view()));
}

}  // namespace
}  // namespace edgellm
