// Every fast kernel against its scalar reference (src/kernels/ref/reference.h, run in double),
// on random data and odd shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/activations.h"
#include "kernels/attention.h"
#include "kernels/gemm_bf16.h"
#include "kernels/matmul.h"
#include "kernels/ref/reference.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/vexp.h"
#include "util/error.h"
#include "util/rng.h"

namespace edgellm {
namespace {

std::vector<float> randn(int64_t n, uint64_t seed, float scale = 1.f) {
  Rng r(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(r.normal()) * scale;
  return v;
}
std::vector<double> to_d(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// max |a-b| / (1 + max |b|): relative to the scale of the output.
double rel_err(const std::vector<float>& a, const std::vector<double>& b) {
  double m = 0, s = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    m = std::max(m, std::abs(double(a[i]) - b[i]));
    s = std::max(s, std::abs(b[i]));
  }
  return m / (1 + s);
}

struct Shape {
  int64_t T, N, K;
};

class MatmulF32 : public ::testing::TestWithParam<Shape> {};

TEST_P(MatmulF32, MatchesReference) {
  auto [T, N, K] = GetParam();
  auto x = randn(T * K, 1), w = randn(N * K, 2), y0 = randn(T * N, 3);
  std::vector<double> ref(T * N);
  ref::matmul(to_d(x).data(), to_d(w).data(), ref.data(), T, N, K);
  std::vector<float> y(T * N);
  matmul(x.data(), WeightView::f32(w.data(), N, K), y.data(), T);
  EXPECT_LT(rel_err(y, ref), 1e-5) << T << "x" << N << "x" << K;
  // accumulate = true adds into y
  std::vector<float> ya = y0;
  matmul(x.data(), WeightView::f32(w.data(), N, K), ya.data(), T, true);
  std::vector<double> refa(T * N);
  for (int64_t i = 0; i < T * N; ++i) refa[i] = ref[i] + y0[i];
  EXPECT_LT(rel_err(ya, refa), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Shapes, MatmulF32,
                         ::testing::Values(Shape{1, 1, 1}, Shape{1, 7, 13}, Shape{1, 33, 64},
                                           Shape{1, 130, 257}, Shape{2, 5, 3}, Shape{3, 17, 31},
                                           Shape{17, 64, 100}, Shape{64, 129, 65},
                                           Shape{128, 256, 512}));

TEST(Matmul, QuantizedTypesMatchDecodedReference) {
  // The T == 1 (GEMV) and T > 1 (tile decode + GEMM) paths of every stored type must equal the
  // reference product with the decoded weights. The GEMV of Q8_0/Q4_0/Q4_K/Q6_K rows runs on
  // 8-bit activations (tensor/dtype.h QuantizedActivations): its reference takes the dequantized
  // activations, and its distance from the fp32-activation product must stay within the rounding
  // bound Σ_k |w_k|·d_b(k)/2.
  const int64_t N = 300, K = 512;  // N > the 256-row tile: two tiles, the last one partial
  for (DType t : {DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    auto wf = randn(N * K, 5, 0.05f);
    const size_t rb = dtype_row_bytes(t, K);
    std::vector<uint8_t> packed(rb * N);
    std::vector<float> dec(N * K);
    for (int64_t r = 0; r < N; ++r) {
      encode_row(t, wf.data() + r * K, packed.data() + r * rb, K);
      decode_row(t, packed.data() + r * rb, dec.data() + r * K, K);
    }
    WeightView w{t, packed.data(), N, K, rb, {}};
    // Both T > 1 paths where this CPU has the bf16 one: BF16 weights take the bf16 GEMM and the
    // other types the decoded-tile bf16 GEMM (gemm_bf16.h), activations and decoded weights
    // rounded to bf16; else the decoded tiles go through the fp32 sgemm.
    const Bf16GemmPath native = bf16_gemm_path();
    for (const auto& [T, path] : std::vector<std::pair<int64_t, Bf16GemmPath>>{
             {1, native}, {3, native}, {70, native}, {70, Bf16GemmPath::Fp32}}) {
      set_bf16_gemm_path(path);
      auto x = randn(T * K, 6);
      const bool bf16_tiles = T > 1 && t != DType::BF16 && path == Bf16GemmPath::Dnnl;
      auto xr = x;
      auto decr = dec;
      if ((t == DType::BF16 && T > 1) || bf16_tiles)
        for (auto& v : xr) v = bf16_to_f32(f32_to_bf16(v));
      if (bf16_tiles)
        for (auto& v : decr) v = bf16_to_f32(f32_to_bf16(v));
      const bool int_gemv = T == 1 && dot_qx_kernel(t) != nullptr;
      QuantizedActivations qx;
      if (int_gemv) {
        qx.quantize(x.data(), K);
        for (int64_t k = 0; k < K; ++k) xr[k] = qx.d[k / 32] * qx.q[k];
      }
      std::vector<double> ref(T * N);
      ref::matmul(to_d(xr).data(), to_d(decr).data(), ref.data(), T, N, K);
      std::vector<float> y(T * N);
      matmul(x.data(), w, y.data(), T);
      set_bf16_gemm_path(native);
      EXPECT_LT(rel_err(y, ref), 2e-5)
          << dtype_name(t) << " T=" << T << " " << bf16_gemm_path_name(path);
      if (int_gemv) {
        std::vector<double> exact(N);
        ref::matmul(to_d(x).data(), to_d(dec).data(), exact.data(), 1, N, K);
        for (int64_t r = 0; r < N; ++r) {
          double bound = 0;
          for (int64_t k = 0; k < K; ++k) bound += std::fabs(dec[r * K + k]) * qx.d[k / 32] / 2;
          EXPECT_LE(std::fabs(y[r] - exact[r]), bound * 1.0001 + 1e-6)
              << dtype_name(t) << " row " << r;
        }
      }
    }
  }
}

TEST(Matmul, QuantizedGemvKeepsANonFiniteActivationNonFinite) {
  // The integer GEMV rounds x to 8 bits; a NaN/Inf in x must still reach y (as with fp32
  // activations), not be rounded to a code.
  const int64_t N = 5, K = 64;
  for (DType t : {DType::Q8_0, DType::Q4_0}) {
    auto wf = randn(N * K, 7, 0.05f);
    const size_t rb = dtype_row_bytes(t, K);
    std::vector<uint8_t> packed(rb * N);
    for (int64_t r = 0; r < N; ++r) encode_row(t, wf.data() + r * K, packed.data() + r * rb, K);
    WeightView w{t, packed.data(), N, K, rb, {}};
    auto x = randn(K, 8);
    x[40] = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> y(N);
    matmul(x.data(), w, y.data(), 1);
    for (int64_t r = 0; r < N; ++r) EXPECT_TRUE(std::isnan(y[r])) << dtype_name(t) << " " << r;
  }
}

// Both implementations of gemm_bf16 (gemm_bf16.h): the oneDNN bf16 matmul where the CPU has
// AVX512_BF16, and the fp32 fallback every other CPU gets (forced here whatever this CPU has).
void check_gemm_bf16() {
  for (auto [M, N, K] : std::vector<Shape>{{2, 3, 5}, {17, 33, 64}, {70, 129, 257}}) {
    auto a = randn(M * K, 20), w = randn(N * K, 21), c0 = randn(M * N, 22);
    std::vector<uint16_t> w16(N * K);
    f32_to_bf16_n(w.data(), w16.data(), N * K);
    std::vector<double> ad(M * K), wd(N * K), wt(N * K);
    for (int64_t i = 0; i < M * K; ++i) ad[i] = bf16_to_f32(f32_to_bf16(a[i]));
    for (int64_t i = 0; i < N * K; ++i) wd[i] = bf16_to_f32(w16[i]);
    // trans_w: c[M,N] = a·Wᵀ with W [N,K];  !trans_w: c[M,N] = a·W with W [K,N] (same bytes)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) wt[n * K + k] = wd[k * N + n];
    for (bool trans : {true, false}) {
      std::vector<double> ref(M * N);
      ref::matmul(ad.data(), trans ? wd.data() : wt.data(), ref.data(), M, N, K);
      std::vector<float> c = c0;
      gemm_bf16(a.data(), w16.data(), c.data(), M, N, K, trans, /*accumulate=*/true);
      for (int64_t i = 0; i < M * N; ++i) ref[i] += c0[i];
      EXPECT_LT(rel_err(c, ref), 1e-5) << M << "x" << N << "x" << K << " trans " << trans;
    }
  }
}

// sgemm_bf16 (both operands fp32, rounded to bf16 inside): every transpose combination, with
// and without accumulation, against a double reference on the rounded operands — so a missed
// rounding (an fp32 product) or a wrong stride fails it.
void check_sgemm_bf16() {
  auto round = [](const std::vector<float>& x) {
    std::vector<double> r(x.size());
    for (size_t i = 0; i < x.size(); ++i) r[i] = bf16_to_f32(f32_to_bf16(x[i]));
    return r;
  };
  for (auto [M, N, K] : std::vector<Shape>{{2, 3, 5}, {17, 33, 64}, {70, 129, 257}})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (bool acc : {false, true}) {
          auto a = randn(M * K, 30), b = randn(K * N, 31), c0 = randn(M * N, 32);
          const auto ad = round(a), bd = round(b);
          std::vector<double> ref(M * N);
          for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < N; ++j) {
              double s = acc ? c0[i * N + j] : 0.0;
              for (int64_t k = 0; k < K; ++k)
                s += (ta ? ad[k * M + i] : ad[i * K + k]) * (tb ? bd[j * K + k] : bd[k * N + j]);
              ref[i * N + j] = s;
            }
          std::vector<float> c = c0;
          sgemm_bf16(ta, tb, M, N, K, a.data(), b.data(), c.data(), acc);
          EXPECT_LT(rel_err(c, ref), 1e-5)
              << M << "x" << N << "x" << K << " ta " << ta << " tb " << tb << " acc " << acc;
        }
}

TEST(GemmBf16, BothLayoutsAndAccumulationMatchReferenceOnRoundedInputs) {
  const Bf16GemmPath chosen = bf16_gemm_path();
  std::vector<Bf16GemmPath> paths = {Bf16GemmPath::Fp32};
  if (chosen == Bf16GemmPath::Dnnl) paths.push_back(Bf16GemmPath::Dnnl);
  for (Bf16GemmPath p : paths) {
    SCOPED_TRACE(bf16_gemm_path_name(p));
    set_bf16_gemm_path(p);
    check_gemm_bf16();
    check_sgemm_bf16();
  }
  set_bf16_gemm_path(chosen);
}

// MatmulMath::Bf16 routes the forward, dx and dw of F32 weights through sgemm_bf16: each equals
// the fp32 product of the bf16-rounded operands, and differs from the exact fp32 result (so the
// switch is really taken); T = 1 (decode) stays fp32.
TEST(GemmBf16, MatmulMathBf16RoundsForwardInputGradientAndWeightGradient) {
  const int64_t T = 9, N = 40, K = 72;
  auto x = randn(T * K, 40), w = randn(N * K, 41), dy = randn(T * N, 42);
  const WeightView wv = WeightView::f32(w.data(), N, K);
  auto rounded = [](std::vector<float> v) {
    for (float& f : v) f = bf16_to_f32(f32_to_bf16(f));
    return v;
  };
  const auto xr = rounded(x), wr = rounded(w), dyr = rounded(dy);
  const WeightView wrv = WeightView::f32(wr.data(), N, K);
  std::vector<float> y(T * N), dx(T * K), dw(N * K), y1(N);
  std::vector<float> ye(T * N), dxe(T * K), dwe(N * K), y1e(N);
  {
    ScopedMatmulMath bf(MatmulMath::Bf16);
    EXPECT_EQ(f32_matmul_math(), MatmulMath::Bf16);
    matmul(x.data(), wv, y.data(), T);
    matmul_backward(dx.data(), dw.data(), dy.data(), x.data(), wv, T);
    matmul(x.data(), wv, y1.data(), 1);
  }
  EXPECT_EQ(f32_matmul_math(), MatmulMath::Fp32);
  matmul(xr.data(), wrv, ye.data(), T);  // fp32 on the rounded operands: the contract
  matmul_backward(dxe.data(), dwe.data(), dyr.data(), xr.data(), wrv, T);
  auto close = [](const std::vector<float>& a, const std::vector<float>& b) {
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, double(std::abs(a[i] - b[i])));
    return worst;
  };
  EXPECT_LT(close(y, ye), 1e-4);
  EXPECT_LT(close(dx, dxe), 1e-4);
  EXPECT_LT(close(dw, dwe), 1e-4);
  std::vector<float> yf(T * N);
  matmul(x.data(), wv, yf.data(), T);
  EXPECT_GT(close(y, yf), 1e-3) << "bf16 math took the exact fp32 path";
  matmul(x.data(), wv, y1e.data(), 1);
  EXPECT_EQ(close(y1, y1e), 0.0) << "decode (T = 1) must stay fp32";
  EXPECT_EQ(matmul_math_from_name("bf16"), MatmulMath::Bf16);
  EXPECT_THROW(matmul_math_from_name("fp16"), Error);
}

TEST(Vexp, MatchesLibmAcrossTheRangeAndAtTheEnds) {
  // Every float in steps across [-87, 88] plus odd lengths (masked tail) and the extremes.
  std::vector<float> x;
  for (double v = -87.0; v <= 88.0; v += 0.00731) x.push_back(static_cast<float>(v));
  x.push_back(0.f);
  std::vector<float> y(x.size());
  exp_n(x.data(), y.data(), static_cast<int64_t>(x.size()));
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double e = std::exp(double(x[i]));
    worst = std::max(worst, std::abs(y[i] - e) / e);
  }
  EXPECT_LT(worst, 3e-7) << "max relative error";  // ~2.5 ulp
  std::vector<float> ends{-1000.f, -104.f, 89.f, 1000.f, -0.f};
  exp_n(ends.data(), ends.data(), 5);
  EXPECT_EQ(ends[0], 0.f);
  EXPECT_EQ(ends[1], 0.f);
  EXPECT_TRUE(std::isinf(ends[2]));
  EXPECT_TRUE(std::isinf(ends[3]));
  EXPECT_EQ(ends[4], 1.f);
  // The shifted sum used by cross-entropy.
  std::vector<float> l = randn(1001, 30, 5.f);
  double ref = 0;
  for (float v : l) ref += std::exp(double(v) - 3.0);
  EXPECT_NEAR(sum_exp_shifted(l.data(), 1001, 3.f), ref, 3e-7 * ref);
}

TEST(Bias, ForwardAddsPerColumnAndBackwardSumsRows) {
  const int64_t T = 3, n = 5;
  auto y = randn(T * n, 40), b = randn(n, 41), dy = randn(T * n, 42);
  auto y0 = y;
  bias_forward(y.data(), b.data(), T, n);
  std::vector<float> db(n, 1.f);
  bias_backward(db.data(), dy.data(), T, n);
  for (int64_t i = 0; i < n; ++i) {
    double s = 1;
    for (int64_t t = 0; t < T; ++t) {
      EXPECT_FLOAT_EQ(y[t * n + i], y0[t * n + i] + b[i]);
      s += dy[t * n + i];
    }
    EXPECT_NEAR(db[i], s, 1e-6);
  }
  bias_forward(y.data(), nullptr, T, n);  // absent bias: untouched
  bias_backward(nullptr, dy.data(), T, n);
}

TEST(RmsNorm, MatchesReference) {
  for (auto [T, C] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 7}, {5, 64}, {9, 1031}}) {
    auto x = randn(T * C, 7), w = randn(C, 8);
    std::vector<double> ref(T * C);
    ref::rmsnorm(to_d(x).data(), to_d(w).data(), ref.data(), T, C, 1e-5);
    std::vector<float> y(T * C), inv(T);
    rmsnorm_forward(y.data(), inv.data(), x.data(), w.data(), T, C, 1e-5f);
    EXPECT_LT(rel_err(y, ref), 1e-6);
  }
}

TEST(Rope, MatchesReferenceWithAndWithoutLlama3Scaling) {
  RopeScaling none, l3;
  l3.enabled = true;
  l3.factor = 8;
  l3.low_freq_factor = 1;
  l3.high_freq_factor = 4;
  l3.original_max_position_embeddings = 64;  // small so all three frequency bands occur
  for (const RopeScaling& sc : {none, l3}) {
    const int64_t T = 5, H = 3, HD = 16, pos0 = 37;
    RopeTable table(HD, 10000.f, sc);
    table.ensure(pos0 + T);
    auto x = randn(T * H * HD, 9);
    std::vector<double> ref = to_d(x);
    ref::rope(ref.data(), T, H, HD, pos0, rope_frequencies(HD, 10000.f, sc));
    rope_forward(x.data(), table, T, H, pos0);
    EXPECT_LT(rel_err(x, ref), 1e-6);
  }
  // Llama-3 scaling leaves high frequencies alone and divides the lowest by `factor`.
  auto f0 = rope_frequencies(16, 10000.f, none), f1 = rope_frequencies(16, 10000.f, l3);
  EXPECT_DOUBLE_EQ(f0[0], f1[0]);
  EXPECT_NEAR(f1[7], f0[7] / 8, 1e-12);
}

struct AttnShape {
  int64_t T, NH, KV, HD, pos0;
};
class Attention : public ::testing::TestWithParam<AttnShape> {};

TEST_P(Attention, MatchesReference) {
  auto [T, NH, KV, HD, pos0] = GetParam();
  const int64_t S = pos0 + T;
  auto q = randn(T * NH * HD, 10), k = randn(S * KV * HD, 11), v = randn(S * KV * HD, 12);
  std::vector<double> ref(T * NH * HD);
  ref::attention(to_d(q).data(), to_d(k).data(), to_d(v).data(), ref.data(), T, NH, KV, HD, pos0);
  std::vector<float> out(T * NH * HD);
  AttentionScratch sc;
  attention_forward(out.data(), sc, q.data(), k.data(), v.data(), T, NH, KV, HD, pos0);
  EXPECT_LT(rel_err(out, ref), 1e-5);
  // Prefill keeps one head's probabilities unless asked for all; the output is the same.
  EXPECT_EQ(sc.scores.size(), static_cast<size_t>((T == 1 ? NH : 1) * T * S));
  AttentionScratch all;
  all.keep_all_heads = true;
  std::vector<float> out_all(T * NH * HD);
  attention_forward(out_all.data(), all, q.data(), k.data(), v.data(), T, NH, KV, HD, pos0);
  EXPECT_EQ(out_all, out);
  ASSERT_EQ(all.scores.size(), static_cast<size_t>(NH * T * S));
  // Every head's rows are probabilities over the causal prefix.
  for (int64_t h = 0; h < NH; ++h)
    for (int64_t t = 0; t < T; ++t) {
      const float* p = all.scores.data() + (h * T + t) * S;
      double sum = 0;
      for (int64_t s = 0; s < S; ++s) {
        if (s > pos0 + t) {
          EXPECT_EQ(p[s], 0.f);
        }
        sum += p[s];
      }
      EXPECT_NEAR(sum, 1.0, 1e-5);
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, Attention,
                         ::testing::Values(AttnShape{1, 1, 1, 2, 0}, AttnShape{1, 8, 4, 8, 9},
                                           AttnShape{7, 4, 2, 6, 0}, AttnShape{5, 6, 3, 10, 11},
                                           AttnShape{33, 12, 12, 64, 0},
                                           AttnShape{16, 8, 1, 16, 5}));

TEST(Activations, SwigluAndCrossEntropyMatchReference) {
  auto g = randn(1001, 13, 3.f), u = randn(1001, 14);
  std::vector<double> ref(1001);
  ref::swiglu(to_d(g).data(), to_d(u).data(), ref.data(), 1001);
  std::vector<float> out(1001);
  swiglu_forward(out.data(), g.data(), u.data(), 1001);
  EXPECT_LT(rel_err(out, ref), 1e-6);

  const int64_t T = 4, V = 777;
  auto logits = randn(T * V, 15, 4.f);
  std::vector<int32_t> tgt{0, 5, 776, 300};
  std::vector<double> lref(T);
  ref::cross_entropy(to_d(logits).data(), tgt.data(), lref.data(), T, V);
  std::vector<float> loss(T);
  cross_entropy_forward(loss.data(), logits.data(), tgt.data(), T, V);
  EXPECT_LT(rel_err(loss, lref), 1e-6);
  tgt[1] = -1;  // masked
  cross_entropy_forward(loss.data(), logits.data(), tgt.data(), T, V);
  EXPECT_EQ(loss[1], 0.f);
}

}  // namespace
}  // namespace edgellm
