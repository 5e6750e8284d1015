// Every backward kernel, two ways:
//  1. its double-precision reference (kernels/ref/reference_backward.h) against central finite
//     differences of the matching forward reference (reference.h), in double: tolerance 1e-6
//     relative (FD step 1e-5 gives ~1e-10 truncation error; the bound leaves room for exp/sqrt);
//  2. the fast fp32 kernel against that reference: tolerance 1e-4 (2e-2 for the quantized dx
//     path, which multiplies by decoded weights: same math, fp32 over longer sums).
// The scalar loss is Σ out ⊙ G for a random G, so dout = G. Shapes are small and odd.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "kernels/activations.h"
#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/ref/reference.h"
#include "kernels/ref/reference_backward.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "util/rng.h"

namespace edgellm {
namespace {

using VD = std::vector<double>;
using VF = std::vector<float>;

VD randd(int64_t n, uint64_t seed, double scale = 1.0) {
  Rng r(seed);
  VD v(n);
  for (auto& x : v) x = r.normal() * scale;
  return v;
}
VF to_f(const VD& v) { return {v.begin(), v.end()}; }
double dot(const VD& a, const VD& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Central differences of loss() w.r.t. every element of x (x restored afterwards).
VD fd(VD& x, const std::function<double()>& loss, double h = 1e-5) {
  VD g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    x[i] = x0 + h;
    const double lp = loss();
    x[i] = x0 - h;
    const double lm = loss();
    x[i] = x0;
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}

// max |a − b| / (1 + max |b|)
template <typename A>
double rel_err(const std::vector<A>& a, const VD& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0, s = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    m = std::max(m, std::abs(double(a[i]) - b[i]));
    s = std::max(s, std::abs(b[i]));
  }
  return m / (1 + s);
}

constexpr double kRefTol = 1e-6, kFastTol = 1e-4;

struct MM {
  int64_t T, N, K;
};
class MatmulBackward : public ::testing::TestWithParam<MM> {};

TEST_P(MatmulBackward, ReferenceMatchesFdAndFastMatchesReference) {
  const MM p = GetParam();  // not a structured binding: the lambdas below capture them
  const int64_t T = p.T, N = p.N, K = p.K;
  VD x = randd(T * K, 1), w = randd(N * K, 2), G = randd(T * N, 3);
  auto loss = [&] {
    VD y(T * N);
    ref::matmul(x.data(), w.data(), y.data(), T, N, K);
    return dot(y, G);
  };
  VD dx(T * K), dw(N * K);
  ref::matmul_backward(dx.data(), dw.data(), G.data(), x.data(), w.data(), T, N, K);
  EXPECT_LT(rel_err(dx, fd(x, loss)), kRefTol);
  EXPECT_LT(rel_err(dw, fd(w, loss)), kRefTol);
  // fast: accumulates onto existing values
  VF xf = to_f(x), wf = to_f(w), gf = to_f(G);
  VF dxf(T * K, 1.f), dwf(N * K, 2.f);
  matmul_backward(dxf.data(), dwf.data(), gf.data(), xf.data(), WeightView::f32(wf.data(), N, K),
                  T);
  VD dx1 = dx, dw2 = dw;
  for (auto& v : dx1) v += 1;
  for (auto& v : dw2) v += 2;
  EXPECT_LT(rel_err(dxf, dx1), kFastTol);
  EXPECT_LT(rel_err(dwf, dw2), kFastTol);
}

INSTANTIATE_TEST_SUITE_P(Shapes, MatmulBackward,
                         ::testing::Values(MM{1, 1, 1}, MM{1, 7, 5}, MM{3, 5, 7}, MM{17, 13, 9},
                                           MM{2, 67, 33}));

TEST(MatmulBackward, DxThroughEveryStoredType) {
  // Frozen weights in any dtype: dx must equal dy·decode(W), for T = 1 and tiled T > 1.
  const int64_t N = 131, K = 256;  // N spans three 64-row decode tiles
  for (DType t : {DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    VF wf = to_f(randd(N * K, 5, 0.05));
    const size_t rb = dtype_row_bytes(t, K);
    std::vector<uint8_t> packed(rb * N);
    VD dec(N * K);
    VF row(K);
    for (int64_t r = 0; r < N; ++r) {
      encode_row(t, wf.data() + r * K, packed.data() + r * rb, K);
      decode_row(t, packed.data() + r * rb, row.data(), K);
      for (int64_t k = 0; k < K; ++k) dec[r * K + k] = row[k];
    }
    WeightView w{t, packed.data(), N, K, rb, {}};
    for (int64_t T : {1, 5}) {
      VD G = randd(T * N, 6);
      // BF16 weights run the bf16 GEMM (gemm_bf16.h): its truth rounds dy to bf16.
      if (t == DType::BF16)
        for (auto& g : G) g = bf16_to_f32(f32_to_bf16(static_cast<float>(g)));
      VD dx(T * K);
      ref::matmul_backward<double>(dx.data(), nullptr, G.data(), nullptr, dec.data(), T, N, K);
      VF dxf(T * K, 0.f), gf = to_f(G);
      matmul_backward(dxf.data(), nullptr, gf.data(), nullptr, w, T);
      EXPECT_LT(rel_err(dxf, dx), kFastTol) << dtype_name(t) << " T=" << T;
    }
  }
}

TEST(RmsnormBackward, ReferenceMatchesFdAndFastMatchesReference) {
  for (const auto& tc : {std::pair<int64_t, int64_t>{1, 1}, {3, 7}, {5, 33}}) {
    const int64_t T = tc.first, C = tc.second;
    VD x = randd(T * C, 7), w = randd(C, 8), G = randd(T * C, 9);
    const double eps = 1e-5;
    auto loss = [&] {
      VD y(T * C);
      ref::rmsnorm(x.data(), w.data(), y.data(), T, C, eps);
      return dot(y, G);
    };
    VD dx(T * C), dw(C);
    ref::rmsnorm_backward(dx.data(), dw.data(), G.data(), x.data(), w.data(), T, C, eps);
    EXPECT_LT(rel_err(dx, fd(x, loss)), kRefTol) << T << "x" << C;
    EXPECT_LT(rel_err(dw, fd(w, loss)), kRefTol);
    VF xf = to_f(x), wf = to_f(w), gf = to_f(G), y(T * C), inv(T);
    rmsnorm_forward(y.data(), inv.data(), xf.data(), wf.data(), T, C, float(eps));
    VF dxf(T * C, 0.f), dwf(C, 0.f);
    rmsnorm_backward(dxf.data(), dwf.data(), gf.data(), xf.data(), wf.data(), inv.data(), T, C);
    EXPECT_LT(rel_err(dxf, dx), kFastTol);
    EXPECT_LT(rel_err(dwf, dw), kFastTol);
  }
}

TEST(RopeBackward, ReferenceMatchesFdAndFastMatchesReference) {
  const int64_t T = 5, H = 3, HD = 6, pos0 = 2;
  RopeTable table(HD, 10000.f, RopeScaling{});
  table.ensure(pos0 + T);
  const auto& freq = table.freqs();
  VD x = randd(T * H * HD, 10), G = randd(T * H * HD, 11);
  auto loss = [&] {
    VD y = x;
    ref::rope(y.data(), T, H, HD, pos0, freq);
    return dot(y, G);
  };
  VD d = G;
  ref::rope_backward(d.data(), T, H, HD, pos0, freq);
  EXPECT_LT(rel_err(d, fd(x, loss)), kRefTol);
  VF df = to_f(G);
  rope_backward(df.data(), table, T, H, pos0);
  EXPECT_LT(rel_err(df, d), kFastTol);
}

struct Att {
  int64_t T, NH, KV, HD, pos0;
};
class AttentionBackward : public ::testing::TestWithParam<Att> {};

TEST_P(AttentionBackward, ReferenceMatchesFdAndFastMatchesReference) {
  const Att a = GetParam();
  const int64_t T = a.T, NH = a.NH, KV = a.KV, HD = a.HD, pos0 = a.pos0;
  const int64_t S = pos0 + T;
  VD q = randd(T * NH * HD, 12), k = randd(S * KV * HD, 13), v = randd(S * KV * HD, 14),
     G = randd(T * NH * HD, 15);
  auto loss = [&] {
    VD o(T * NH * HD);
    ref::attention(q.data(), k.data(), v.data(), o.data(), T, NH, KV, HD, pos0);
    return dot(o, G);
  };
  VD dq(q.size()), dk(k.size()), dv(v.size());
  ref::attention_backward(dq.data(), dk.data(), dv.data(), G.data(), q.data(), k.data(), v.data(),
                          T, NH, KV, HD, pos0);
  EXPECT_LT(rel_err(dq, fd(q, loss)), kRefTol);
  EXPECT_LT(rel_err(dk, fd(k, loss)), kRefTol);
  EXPECT_LT(rel_err(dv, fd(v, loss)), kRefTol);
  VF qf = to_f(q), kf = to_f(k), vf = to_f(v), gf = to_f(G), out(T * NH * HD), dp(T * S);
  AttentionScratch sc;
  sc.keep_all_heads = true;
  attention_forward(out.data(), sc, qf.data(), kf.data(), vf.data(), T, NH, KV, HD, pos0);
  VF dqf(q.size(), 0.f), dkf(k.size(), 0.f), dvf(v.size(), 0.f);
  attention_backward(dqf.data(), dkf.data(), dvf.data(), dp.data(), gf.data(), qf.data(), kf.data(),
                     vf.data(), sc.scores.data(), T, NH, KV, HD, pos0);
  EXPECT_LT(rel_err(dqf, dq), kFastTol);
  EXPECT_LT(rel_err(dkf, dk), kFastTol);
  EXPECT_LT(rel_err(dvf, dv), kFastTol);
  // Recomputing each head's probabilities into one [T, S] buffer: the same gradients, bit for
  // bit (the same GEMM and softmax calls, per head).
  VF p(T * S), dqr(q.size(), 0.f), dkr(k.size(), 0.f), dvr(v.size(), 0.f);
  attention_backward_recompute(dqr.data(), dkr.data(), dvr.data(), p.data(), dp.data(), gf.data(),
                               qf.data(), kf.data(), vf.data(), T, NH, KV, HD, pos0);
  EXPECT_EQ(dqr, dqf);
  EXPECT_EQ(dkr, dkf);
  EXPECT_EQ(dvr, dvf);
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionBackward,
                         ::testing::Values(Att{1, 1, 1, 1, 0}, Att{5, 4, 2, 6, 0},
                                           Att{7, 3, 1, 5, 0}, Att{3, 6, 3, 4, 4},
                                           Att{9, 2, 2, 9, 0}));

TEST(SwigluBackward, ReferenceMatchesFdAndFastMatchesReference) {
  const int64_t n = 37;
  VD g = randd(n, 16, 2.0), u = randd(n, 17), G = randd(n, 18);
  auto loss = [&] {
    VD o(n);
    ref::swiglu(g.data(), u.data(), o.data(), n);
    return dot(o, G);
  };
  VD dg(n), du(n);
  ref::swiglu_backward(dg.data(), du.data(), G.data(), g.data(), u.data(), n);
  EXPECT_LT(rel_err(dg, fd(g, loss)), kRefTol);
  EXPECT_LT(rel_err(du, fd(u, loss)), kRefTol);
  VF gf = to_f(g), uf = to_f(u), Gf = to_f(G), dgf(n, 0.f), duf(n, 0.f);
  swiglu_backward(dgf.data(), duf.data(), Gf.data(), gf.data(), uf.data(), n);
  EXPECT_LT(rel_err(dgf, dg), kFastTol);
  EXPECT_LT(rel_err(duf, du), kFastTol);
}

TEST(CrossEntropyBackward, ReferenceMatchesFdAndFastMatchesReference) {
  const int64_t T = 4, V = 11;
  const std::vector<int32_t> target{3, -1, 0, 10};  // row 1 masked
  VD logits = randd(T * V, 19, 3.0), dl = randd(T, 20);
  auto loss = [&] {
    VD l(T);
    for (int64_t t = 0; t < T; ++t)
      if (target[t] >= 0) ref::cross_entropy(logits.data() + t * V, &target[t], &l[t], 1, V);
    return dot(l, dl);
  };
  VD d(T * V);
  ref::cross_entropy_backward(d.data(), dl.data(), logits.data(), target.data(), T, V);
  EXPECT_LT(rel_err(d, fd(logits, loss)), kRefTol);
  VF lf = to_f(logits), dlf = to_f(dl), df(T * V, 0.f);
  cross_entropy_backward(df.data(), dlf.data(), lf.data(), target.data(), T, V);
  EXPECT_LT(rel_err(df, d), kFastTol);
  for (int64_t j = 0; j < V; ++j) EXPECT_EQ(df[V + j], 0.f);  // masked row: no gradient
}

TEST(EmbeddingBackward, RepeatedTokensAccumulate) {
  const int64_t V = 5, C = 3, T = 4;
  const std::vector<int32_t> tok{2, 0, 2, 4};
  VD E = randd(V * C, 21), G = randd(T * C, 22);
  auto loss = [&] {
    double s = 0;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < C; ++i) s += E[tok[t] * C + i] * G[t * C + i];
    return s;
  };
  VD d(V * C);
  ref::embedding_backward(d.data(), G.data(), tok.data(), T, C);
  EXPECT_LT(rel_err(d, fd(E, loss)), kRefTol);
  VF Gf = to_f(G), df(V * C, 0.f);
  embedding_backward(df.data(), Gf.data(), tok.data(), T, C);
  EXPECT_LT(rel_err(df, d), kFastTol);
}

}  // namespace
}  // namespace edgellm
