// matmul()/matmul_backward() on a WeightView of DType::Packed go through the packed kernels: the
// result equals the scalar reference (packed/packed_ref.h, in double) for decode (T = 1) and
// prefill (T > 1) shapes (the prefill's bf16 path: on bf16-rounded operands), and asking for dW
// of a frozen packed weight is refused.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/gemm_bf16.h"
#include "kernels/matmul.h"
#include "packed/packed_ref.h"
#include "packed/random_packed.h"
#include "util/error.h"

namespace edgellm {
namespace {

TEST(PackedDispatch, MatmulAndBackwardMatchTheScalarReference) {
  Rng rng(5);
  const WeightFormat fmts[] = {{4, 0, QuantScheme::Sym, SparseFormat::None, 0, 0},
                               {3, 32, QuantScheme::Asym, SparseFormat::Bitmask, 0, 0},
                               {5, 0, QuantScheme::Sym, SparseFormat::NM, 2, 4}};
  for (const WeightFormat& f : fmts) {
    const int64_t N = 131, K = 75;
    const PackedWeight p = pack(random_q(f, N, K, 0.5, rng));
    WeightView w;
    w.dtype = DType::Packed;
    w.rows = N;
    w.cols = K;
    w.packed = p.view();
    for (int64_t T : {1, 5}) {
      std::vector<float> x(T * K), y(T * N), dy(T * N), dx(T * K, 0.f);
      for (float& v : x) v = float(rng.normal());
      for (float& v : dy) v = float(rng.normal());
      std::vector<double> xd(x.begin(), x.end()), dyd(dy.begin(), dy.end()), yd(T * N),
          dxd(T * K, 0.0);
      ref::packed_matmul<double>(xd.data(), p.view(), yd.data(), T);
      ref::packed_matmul_backward<double>(dxd.data(), dyd.data(), p.view(), T);
      // The fp32 path against the scalar reference; where this CPU has it, the bf16 path
      // against the same product on bf16-rounded operands.
      const Bf16GemmPath native = bf16_gemm_path();
      set_bf16_gemm_path(Bf16GemmPath::Fp32);
      matmul(x.data(), w, y.data(), T);
      set_bf16_gemm_path(native);
      matmul_backward(dx.data(), nullptr, dy.data(), x.data(), w, T);
      for (int64_t i = 0; i < T * N; ++i)
        ASSERT_NEAR(y[i], yd[i], 1e-4 * (1 + std::abs(yd[i]))) << f.name() << " T" << T;
      if (T > 1 && native == Bf16GemmPath::Dnnl) {
        const std::vector<double> yb = bf16_packed_matmul_ref(x.data(), p.view(), T);
        matmul(x.data(), w, y.data(), T);
        for (int64_t i = 0; i < T * N; ++i)
          ASSERT_NEAR(y[i], yb[i], 1e-4 * (1 + std::abs(yb[i]))) << f.name() << " bf16 T" << T;
      }
      for (int64_t i = 0; i < T * K; ++i)
        ASSERT_NEAR(dx[i], dxd[i], 1e-4 * (1 + std::abs(dxd[i]))) << f.name() << " T" << T;
      std::vector<float> dw(N * K);
      EXPECT_THROW(matmul_backward(dx.data(), dw.data(), dy.data(), x.data(), w, T), Error);
    }
  }
}

}  // namespace
}  // namespace edgellm
