// Every dispatched SIMD kernel (simd/simd.h) against a scalar reference, on every target this
// machine can execute (simd::set_target), with odd sizes and misaligned pointers; the target
// selection itself; and the rule that only src/simd includes ISA-specific headers.
#include "simd/simd.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "simd/half.h"
#include "simd/target.h"
#include "simd_test_util.h"
#include "tensor/dtype.h"
#include "util/error.h"

namespace edgellm {
namespace {

const int64_t kSizes[] = {0, 1, 3, 7, 15, 16, 17, 31, 33, 64, 100, 257, 1000};

std::vector<float> randn(int64_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = nd(rng);
  return v;
}

// A copy of v starting `off` bytes past a 64-byte boundary: kernels must not assume alignment.
template <typename T>
struct Misaligned {
  std::vector<uint8_t> buf;
  T* p;
  Misaligned(const T* src, size_t n, size_t off) : buf(n * sizeof(T) + 64 + off + 64) {
    uint8_t* base = buf.data();
    base += (64 - reinterpret_cast<uintptr_t>(base) % 64) % 64;
    p = reinterpret_cast<T*>(base + off);
    if (n) std::memcpy(p, src, n * sizeof(T));
  }
};

using testing::for_each_target;

double dot_ref(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(a[i]) * b[i];
  return s;
}
double abs_dot(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::abs(double(a[i]) * b[i]);
  return s;
}

TEST(SimdTarget, NamesAndErrors) {
  const auto avail = simd::available_targets();
  const auto compiled = simd::compiled_targets();
  ASSERT_FALSE(avail.empty());
  std::string list;
  for (const auto& t : avail) list += " " + t;
  std::printf("SIMD targets this machine executes (every kernel test runs on each):%s\n",
              list.c_str());
  for (const auto& t : avail)
    EXPECT_NE(std::find(compiled.begin(), compiled.end(), t), compiled.end());
  simd::set_target("best");
  EXPECT_EQ(simd::active_target(), avail.front());
  EXPECT_THROW(simd::set_target("avx1024"), Error);
  // A compiled target this CPU lacks is refused with the list of available ones.
  for (const auto& t : compiled)
    if (std::find(avail.begin(), avail.end(), t) == avail.end()) {
      try {
        simd::set_target(t);
        FAIL() << "accepted " << t;
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("cannot execute"), std::string::npos) << e.what();
      }
    }
  EXPECT_EQ(simd::active_target(), avail.front());
}

TEST(SimdKernels, DotF32AndDot4) {
  for_each_target([] {
    for (int64_t n : kSizes) {
      const auto a = randn(n, 1), b = randn(n, 2), c = randn(n, 3), d = randn(n, 4),
                 x = randn(n, 5);
      Misaligned<float> ma(a.data(), n, 4), mx(x.data(), n, 8);
      const double tol = 1e-5 * abs_dot(a.data(), x.data(), n) + 1e-6;
      EXPECT_NEAR(simd::dot_f32(ma.p, mx.p, n), dot_ref(a.data(), x.data(), n), tol) << n;
      float out[4];
      simd::dot4_f32(ma.p, b.data(), c.data(), d.data(), mx.p, n, out);
      const float* rows[4] = {a.data(), b.data(), c.data(), d.data()};
      for (int j = 0; j < 4; ++j)
        EXPECT_NEAR(out[j], dot_ref(rows[j], x.data(), n),
                    1e-5 * abs_dot(rows[j], x.data(), n) + 1e-6)
            << n << " row " << j;
    }
  });
}

TEST(SimdKernels, DotHalfTypesAndBlockFormatsMatchDecodeThenDot) {
  for_each_target([] {
    for (DType t : {DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
      const int64_t bs = dtype_block_size(t);
      for (int64_t nb : {1, 2, 3, 5}) {
        const int64_t n = bs == 1 ? 33 * nb : bs * nb;
        const auto w = randn(n, 10 + static_cast<uint32_t>(nb)), x = randn(n, 20);
        std::vector<uint8_t> enc(dtype_row_bytes(t, n));
        encode_row(t, w.data(), enc.data(), n);
        std::vector<float> dec(static_cast<size_t>(n));
        decode_row(t, enc.data(), dec.data(), n);
        const double ref = dot_ref(dec.data(), x.data(), n);
        const double tol = 2e-5 * abs_dot(dec.data(), x.data(), n) + 1e-6;
        Misaligned<uint8_t> mw(enc.data(), enc.size(), 1);  // odd byte address
        Misaligned<float> mx(x.data(), n, 4);
        float got = 0;
        switch (t) {
          case DType::F16:
            got = simd::dot_f16(mw.p, mx.p, n);
            break;
          case DType::BF16:
            got = simd::dot_bf16(mw.p, mx.p, n);
            break;
          case DType::Q8_0:
            got = simd::dot_q8_0(mw.p, mx.p, n / 32);
            break;
          case DType::Q4_0:
            got = simd::dot_q4_0(mw.p, mx.p, n / 32);
            break;
          case DType::Q4_K:
            got = simd::dot_q4_k(mw.p, mx.p, n / 256);
            break;
          default:
            got = simd::dot_q6_k(mw.p, mx.p, n / 256);
            break;
        }
        EXPECT_NEAR(got, ref, tol) << dtype_name(t) << " n=" << n;
        // The hoisted kernel pointer (gemv's path) is the same kernel of the same target.
        EXPECT_EQ(dot_row_kernel(t)(mw.p, mx.p, n), got) << dtype_name(t) << " n=" << n;
      }
    }
  });
}

TEST(SimdKernels, QuantizedActivationsRoundEachBlockToItsOwnScale) {
  auto x = randn(96, 7);
  for (int j = 32; j < 64; ++j) x[j] = 0.f;  // an all-zero block: scale 0, codes 0
  x[70] = 1e4f;                              // a block dominated by one value
  QuantizedActivations qx;
  qx.quantize(x.data(), 96);
  for (int b = 0; b < 3; ++b) {
    float amax = 0;
    int32_t sum = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * b + j]));
    EXPECT_FLOAT_EQ(qx.d[b], amax / 127.f) << b;
    for (int j = 0; j < 32; ++j) {
      const int16_t q = qx.q[32 * b + j];
      EXPECT_LE(std::abs(q), 127);
      EXPECT_LE(std::fabs(qx.d[b] * q - x[32 * b + j]), qx.d[b] * 0.5f * 1.0001f) << b << " " << j;
      sum += q;
    }
    EXPECT_EQ(qx.s[b], sum) << b;
  }
  EXPECT_THROW(qx.quantize(x.data(), 40), Error);  // not whole blocks
  auto tiny = x;
  for (int j = 0; j < 32; ++j) tiny[j] = 1e-36f * (j + 1);  // 127/amax would overflow
  ASSERT_TRUE(qx.quantize(tiny.data(), 96));
  EXPECT_EQ(qx.d[0], 0.f);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(qx.q[j], 0) << j;
  auto bad = x;
  bad[50] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(qx.quantize(bad.data(), 96));
}

TEST(SimdKernels, IntegerDotsOnQuantizedActivationsMatchDecodeThenDot) {
  for_each_target([] {
    for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
      const int64_t bs = dtype_block_size(t);
      for (int64_t nb : {1, 2, 3, 5, 6, 9}) {
        const int64_t n = bs * nb;
        const auto w = randn(n, 30 + static_cast<uint32_t>(nb));
        auto x = randn(n, 40);
        for (int64_t j = 0; j < n; j += 64) x[j] *= 50.f;  // blocks of very different scales
        std::vector<uint8_t> enc(dtype_row_bytes(t, n));
        encode_row(t, w.data(), enc.data(), n);
        QuantizedActivations qx;
        qx.quantize(x.data(), n);
        std::vector<float> dec(static_cast<size_t>(n)), xd(static_cast<size_t>(n));
        decode_row(t, enc.data(), dec.data(), n);
        for (int64_t j = 0; j < n; ++j) xd[j] = qx.d[j / 32] * qx.q[j];
        const double ref = dot_qx_ref(t, enc.data(), qx, n);
        const double tol = 2e-5 * abs_dot(dec.data(), xd.data(), n) + 1e-6;
        Misaligned<uint8_t> mw(enc.data(), enc.size(), 1);  // odd byte address
        const simd::QdotFn k = dot_qx_kernel(t);
        ASSERT_NE(k, nullptr) << dtype_name(t);
        EXPECT_NEAR(k(mw.p, qx.view(), n), ref, tol) << dtype_name(t) << " n=" << n;
        // The target's portable kernel, and the AVX512-VNNI one where the CPU has it (whichever
        // the first call chose, both are checked).
        const simd::DotKind kind = *dot_kind(t);
        EXPECT_NEAR(simd::qdot_portable_kernel(kind)(mw.p, qx.view(), n), ref, tol)
            << dtype_name(t) << " n=" << n << " (portable)";
        if (const simd::QdotFn v = simd::qdot_vnni_kernel(kind)) {
          EXPECT_NEAR(v(mw.p, qx.view(), n), ref, tol) << dtype_name(t) << " n=" << n << " (vnni)";
        }
      }
    }
  });
  for (DType t : {DType::F32, DType::F16, DType::BF16}) EXPECT_EQ(dot_qx_kernel(t), nullptr);
}

TEST(SimdTarget, HoistedKernelPointersFollowTheTarget) {
  std::vector<simd::DotRowFn> seen;
  for_each_target([&] { seen.push_back(simd::dot_row_kernel(simd::DotKind::Q8_0)); });
  for (size_t i = 0; i < seen.size(); ++i)
    for (size_t j = i + 1; j < seen.size(); ++j) EXPECT_NE(seen[i], seen[j]) << i << " " << j;
}

TEST(SimdKernels, ExpFamilyMatchesLibm) {
  for_each_target([] {
    for (int64_t n : kSizes) {
      std::vector<float> x(static_cast<size_t>(n));
      std::mt19937 rng(7);
      std::uniform_real_distribution<float> u(-87.f, 88.f);
      for (auto& v : x) v = u(rng);
      Misaligned<float> mx(x.data(), n, 4);
      std::vector<float> y(static_cast<size_t>(n) + 1, -1.f);
      simd::exp_n(mx.p, y.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const double r = std::exp(double(x[i]));
        ASSERT_NEAR(y[i], r, 3e-7 * r) << "exp(" << x[i] << ") n=" << n;
      }
      EXPECT_EQ(y[n], -1.f) << "wrote past the end";
      const float shift = 80.f;
      double ref = 0;
      for (float v : x) ref += std::exp(double(v) - shift);
      EXPECT_NEAR(simd::sum_exp_shifted(mx.p, n, shift), ref, 1e-6 * ref + 1e-30) << n;
      std::vector<float> dd = randn(n, 8);
      auto want = dd;
      for (int64_t i = 0; i < n; ++i) want[i] += 0.5f * float(std::exp(double(x[i]) - shift));
      simd::axpy_exp_shifted(dd.data(), mx.p, n, shift, 0.5f);
      for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(dd[i], want[i], 1e-6 * (1 + std::abs(want[i])));
    }
    // The ends: underflow to 0, overflow to +inf, exactly 1 at 0.
    const float ends[5] = {-200.f, -104.f, 0.f, 89.f, 200.f};
    float e[5];
    simd::exp_n(ends, e, 5);
    EXPECT_EQ(e[0], 0.f);
    EXPECT_EQ(e[1], 0.f);
    EXPECT_EQ(e[2], 1.f);
    EXPECT_TRUE(std::isinf(e[3]) && std::isinf(e[4]));
  });
}

TEST(SimdKernels, SwigluForwardAndBackward) {
  for_each_target([] {
    for (int64_t n : kSizes) {
      const auto g = randn(n, 1, 3.f), u = randn(n, 2), dy = randn(n, 3);
      Misaligned<float> mg(g.data(), n, 4);
      std::vector<float> out(static_cast<size_t>(n)), dg = randn(n, 4), du = randn(n, 5);
      auto dg0 = dg, du0 = du;
      simd::swiglu(out.data(), mg.p, u.data(), n);
      simd::swiglu_backward(dg.data(), du.data(), dy.data(), mg.p, u.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const double s = 1 / (1 + std::exp(-double(g[i])));
        ASSERT_NEAR(out[i], g[i] * s * u[i], 1e-5 * (1 + std::abs(g[i] * u[i])));
        ASSERT_NEAR(dg[i], dg0[i] + dy[i] * u[i] * s * (1 + g[i] * (1 - s)),
                    1e-5 * (1 + std::abs(dy[i] * u[i])));
        ASSERT_NEAR(du[i], du0[i] + dy[i] * g[i] * s, 1e-5 * (1 + std::abs(dy[i] * g[i])));
      }
    }
  });
}

simd::AdamWStep adamw_step_constants() {
  simd::AdamWStep a;
  a.b1 = 0.9f;
  a.b2 = 0.999f;
  a.eps = 1e-8f;
  a.clip = 0.7f;
  a.lr_bc1 = 1e-3f / (1 - 0.9f * 0.9f);  // step 2
  a.inv_bc2 = 1 / (1 - 0.999f * 0.999f);
  a.decay = 1e-3f * 0.1f;
  return a;
}

// The fp32 update against the textbook formula in double.
TEST(SimdKernels, AdamWF32MatchesTheFormula) {
  const simd::AdamWStep a = adamw_step_constants();
  for_each_target([&] {
    for (int64_t n : kSizes) {
      auto p = randn(n, 1), g = randn(n, 2), m = randn(n, 3, 0.1f), v = randn(n, 4, 0.1f);
      for (float& x : v) x = x * x;
      const auto p0 = p, m0 = m, v0 = v;
      Misaligned<float> mg(g.data(), n, 4);
      simd::adamw_f32(p.data(), mg.p, m.data(), v.data(), n, a);
      for (int64_t i = 0; i < n; ++i) {
        const double gi = double(g[i]) * a.clip;
        const double mi = a.b1 * double(m0[i]) + (1 - double(a.b1)) * gi;
        const double vi = a.b2 * double(v0[i]) + (1 - double(a.b2)) * gi * gi;
        const double pi =
            p0[i] - (a.decay * double(p0[i]) + a.lr_bc1 * mi / (std::sqrt(vi * a.inv_bc2) + a.eps));
        ASSERT_NEAR(m[i], mi, 1e-6 * (1 + std::abs(mi)));
        ASSERT_NEAR(v[i], vi, 1e-6 * (1 + vi));
        ASSERT_NEAR(p[i], pi, 1e-6 * (1 + std::abs(pi)));
      }
    }
  });
}

// The 8-bit moment code: exact at 0 and ±1 (the block maximum), round to nearest on a grid of
// relative steps of 1/8 (error at most half a step) down to 2^-14 of the block maximum, zero
// below; decode(encode) is the identity on the codes.
TEST(SimdKernels, Q8MomentCodeRoundsToNearestAndFlushes) {
  EXPECT_EQ(simd::q8_decode_one(simd::q8_encode_one(0.f, 2.f), 2.f), 0.f);
  EXPECT_EQ(simd::q8_decode_one(simd::q8_encode_one(2.f, 2.f), 2.f), 2.f);
  EXPECT_EQ(simd::q8_decode_one(simd::q8_encode_one(-2.f, 2.f), 2.f), -2.f);
  EXPECT_EQ(simd::q8_decode_one(simd::q8_encode_one(1.0624f, 2.f), 2.f), 1.f);  // 1 + 0.49 step
  EXPECT_EQ(simd::q8_decode_one(simd::q8_encode_one(1.0626f, 2.f), 2.f), 1.125f);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int i = 0; i < 20000; ++i) {
    const float x = u(rng) * std::ldexp(1.f, -(i % 14));  // magnitudes down to 2^-14
    const float q = simd::q8_decode_one(simd::q8_encode_one(x, 1.f), 1.f);
    if (std::abs(x) >= std::ldexp(1.f, -14)) {
      ASSERT_LE(std::abs(q - x), std::abs(x) / 16 + 1e-12f) << x;
      ASSERT_TRUE((q > 0) == (x > 0)) << x;
    }
  }
  EXPECT_EQ(simd::q8_encode_one(std::ldexp(1.f, -16), 1.f), 0);
  for (int c = 0; c < 256; ++c) {
    // Exponent code 0 is zero; above 120 (1.0) the codes exceed the block maximum, never written.
    if ((c & 0x7f) < 8 || (c & 0x7f) > 120) continue;
    const auto code = static_cast<uint8_t>(c);
    EXPECT_EQ(simd::q8_encode_one(simd::q8_decode_one(code, 3.f), 3.f), code) << c;
  }
}

// The 8-bit AdamW kernel on every target against a scalar reference built from the scalar twins:
// parameters to fp32 rounding, codes equal or one step apart
// (an FMA may move a value across a rounding threshold), scales the block maxima of the new
// moments; spans of several blocks with a partial last one.
TEST(SimdKernels, AdamWQ8MatchesScalarReference) {
  const simd::AdamWStep a = adamw_step_constants();
  const int64_t B = simd::kQ8Block;
  for_each_target([&] {
    for (int64_t n : {int64_t(1), int64_t(17), B, 2 * B + 37}) {
      const int64_t nb = (n + B - 1) / B;
      auto p = randn(n, 11), g = randn(n, 12, 0.01f);
      std::vector<uint8_t> mq(n), uq(n);
      std::vector<float> ms(nb, 0.f), us(nb, 0.f);
      // A first step from zero moments, then a second from what it stored.
      for (int step = 0; step < 2; ++step) {
        auto rp = p;
        auto rmq = mq, ruq = uq;
        auto rms = ms, rus = us;
        // Reference: block by block, as documented in simd.h / optim_kernels.cpp.
        for (int64_t b = 0; b < nb; ++b) {
          const int64_t i0 = b * B, len = std::min(B, n - i0);
          std::vector<float> mt(len), ut(len);
          float mx = 0, ux = 0;
          for (int64_t i = 0; i < len; ++i) {
            float m0 = simd::q8_decode_one(mq[i0 + i], ms[b]);
            const float u0 = simd::q8_decode_one(uq[i0 + i], us[b]);
            float v0 = u0 * u0;
            simd::adamw_f32_one(rp[i0 + i], g[i0 + i], m0, v0, a);
            mt[i] = m0;
            ut[i] = std::sqrt(v0);
            mx = std::max(mx, std::abs(m0));
            ux = std::max(ux, ut[i]);
          }
          rms[b] = mx;
          rus[b] = ux;
          for (int64_t i = 0; i < len; ++i) {
            ruq[i0 + i] = simd::q8_encode_one(ut[i], ux);
            rmq[i0 + i] = ruq[i0 + i] == 0 ? 0 : simd::q8_encode_one(mt[i], mx);
          }
        }
        simd::adamw_q8(p.data(), g.data(), mq.data(), ms.data(), uq.data(), us.data(), n, a);
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_NEAR(p[i], rp[i], 1e-6 * (1 + std::abs(rp[i]))) << "n " << n << " i " << i;
          ASSERT_LE(std::abs(int(mq[i] & 0x7f) - int(rmq[i] & 0x7f)), 1) << n << " " << i;
          if ((mq[i] & 0x7f) && (rmq[i] & 0x7f)) {
            ASSERT_EQ(mq[i] & 0x80, rmq[i] & 0x80) << "sign " << n << " " << i;
          }
          ASSERT_LE(std::abs(int(uq[i]) - int(ruq[i])), 1) << n << " " << i;
        }
        for (int64_t b = 0; b < nb; ++b) {
          ASSERT_NEAR(ms[b], rms[b], 1e-6f * rms[b]);
          ASSERT_NEAR(us[b], rus[b], 1e-6f * rus[b]);
          ASSERT_GT(us[b], 0.f);
        }
      }
    }
  });
}

// The vector encoder bit for bit against the scalar twin: with b1 = b2 = 0, clip 1 and lr 0 the
// kernel's new moments are exactly g and |g| (sqrt of a square is exact), so its codes must
// equal q8_encode_one(g, max|g|) and q8_encode_one(|g|, max|g|) byte for byte — sign, rounding
// to nearest (values placed at and around half steps) and flushing included.
TEST(SimdKernels, AdamWQ8EncoderIsBitExactAgainstTheScalarTwin) {
  simd::AdamWStep a{};
  a.clip = 1.f;
  a.eps = 1e-8f;
  a.inv_bc2 = 1.f;
  const int64_t n = 3 * simd::kQ8Block + 19;
  std::vector<float> g = randn(n, 21);
  for (int64_t i = 0; i < n; i += 7)
    g[i] = (i % 2 ? -1.f : 1.f) * (1.f + (2 * (i % 8) + 1) / 16.f) / 4;
  for (int64_t i = 3; i < n; i += 11) g[i] = std::ldexp(g[i], -16);  // flushed
  g[5] = 0.f;
  for_each_target([&] {
    std::vector<float> p(n, 1.f);
    std::vector<uint8_t> mq(n, 0), uq(n, 0);
    std::vector<float> ms(4, 1.f), us(4, 1.f);
    simd::adamw_q8(p.data(), g.data(), mq.data(), ms.data(), uq.data(), us.data(), n, a);
    for (int64_t b = 0; b * simd::kQ8Block < n; ++b) {
      float mx = 0;
      for (int64_t i = b * simd::kQ8Block; i < std::min(n, (b + 1) * simd::kQ8Block); ++i)
        mx = std::max(mx, std::abs(g[i]));
      ASSERT_EQ(ms[b], mx);
      ASSERT_EQ(us[b], mx);
      for (int64_t i = b * simd::kQ8Block; i < std::min(n, (b + 1) * simd::kQ8Block); ++i) {
        const uint8_t uc = simd::q8_encode_one(std::abs(g[i]), mx);
        ASSERT_EQ(uq[i], uc) << i;
        ASSERT_EQ(mq[i], uc == 0 ? 0 : simd::q8_encode_one(g[i], mx)) << i;
      }
    }
  });
}

// The causal attention row's softmax and its backward against double references, zeros past the
// prefix, nothing written past S.
TEST(SimdKernels, SoftmaxPrefixAndItsBackwardMatchDouble) {
  for_each_target([] {
    for (int64_t n : kSizes) {
      if (n == 0) continue;
      const int64_t S = n + 5;
      std::vector<float> x = randn(S, 11, 6.f);
      x[static_cast<size_t>(n / 2)] = 30.f;  // one dominant score
      std::vector<float> p(x.begin(), x.end());
      p.push_back(-2.f);  // guard past S
      simd::softmax_prefix(p.data(), n, S);
      double mx = -INFINITY, z = 0;
      for (int64_t i = 0; i < n; ++i) mx = std::max(mx, double(x[i]));
      for (int64_t i = 0; i < n; ++i) z += std::exp(double(x[i]) - mx);
      std::vector<double> ref(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) ref[i] = std::exp(double(x[i]) - mx) / z;
      // exp's ~2 ulp, the fp32 rounding of x − max (relative |x − max|·2^-24 in the result) and
      // of the sum and scale.
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(p[i], ref[i], 3e-7 * (4 + std::fabs(x[i] - mx)) * ref[i] + 1e-30) << n;
      for (int64_t i = n; i < S; ++i) EXPECT_EQ(p[i], 0.f) << n;
      EXPECT_EQ(p[S], -2.f) << "wrote past S, n=" << n;
      const std::vector<float> g = randn(n, 12);
      std::vector<float> dd = g;
      simd::softmax_backward_row(dd.data(), p.data(), n);
      double dot = 0, scale = 0;
      for (int64_t i = 0; i < n; ++i) dot += double(p[i]) * g[i];
      for (int64_t i = 0; i < n; ++i) scale = std::max(scale, std::fabs(double(p[i]) * g[i]));
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(dd[i], double(p[i]) * (g[i] - dot), 1e-6 * (scale + 1e-30)) << n;
    }
  });
}

TEST(SimdKernels, RmsNormPiecesRopeAndAxpy) {
  for_each_target([] {
    for (int64_t n : kSizes) {
      const auto x = randn(n, 1), w = randn(n, 2), c = randn(n, 3), s = randn(n, 4);
      Misaligned<float> mx(x.data(), n, 4);
      double ss = 0;
      for (float v : x) ss += double(v) * v;
      EXPECT_NEAR(simd::sum_squares(mx.p, n), ss, 1e-12 * (1 + ss)) << n;
      std::vector<float> o(static_cast<size_t>(n));
      simd::scale_mul(o.data(), mx.p, 0.7f, w.data(), n);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(o[i], x[i] * 0.7f * w[i], 1e-6 * (1 + std::abs(x[i] * w[i])));
      // RoPE on n pairs.
      const auto p0 = randn(2 * n, 5);
      Misaligned<float> mp(p0.data(), 2 * n, 4);
      simd::rope_pairs(mp.p, c.data(), s.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const double a = p0[2 * i], b = p0[2 * i + 1];
        ASSERT_NEAR(mp.p[2 * i], a * c[i] - b * s[i], 1e-5);
        ASSERT_NEAR(mp.p[2 * i + 1], a * s[i] + b * c[i], 1e-5);
      }
      auto y = randn(n, 6);
      auto want = y;
      for (int64_t i = 0; i < n; ++i) want[i] += -1.5f * x[i];
      simd::axpy(y.data(), -1.5f, mx.p, n);
      for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(y[i], want[i], 1e-6 * (1 + std::abs(want[i])));
    }
  });
}

TEST(SimdKernels, HalfConversionsAreExactRoundToNearestEven) {
  // Every fp16 / bf16 bit pattern one way, random and special fp32 values the other way.
  std::vector<uint16_t> all(65536);
  for (uint32_t h = 0; h < 65536; ++h) all[h] = static_cast<uint16_t>(h);
  std::vector<float> f(20000);
  std::mt19937 rng(3);
  for (auto& v : f) {
    const uint32_t u = rng();
    std::memcpy(&v, &u, 4);
  }
  const float special[] = {0.f,      -0.f,      65504.f,  65519.f,
                           65520.f,  1e-8f,     5.96e-8f, 2.98e-8f,
                           INFINITY, -INFINITY, NAN,      1.f + std::ldexp(1.f, -11)};
  f.insert(f.begin() + 1, std::begin(special), std::end(special));  // odd offset
  const int64_t nf = static_cast<int64_t>(f.size()) - 1;
  for_each_target([&] {
    std::vector<float> dec(all.size());
    Misaligned<uint16_t> ma(all.data(), all.size(), 1);
    simd::f16_to_f32_n(ma.p, dec.data(), 65536);
    for (uint32_t h = 0; h < 65536; ++h) {
      const float r = simd::half_to_float(static_cast<uint16_t>(h));
      if (std::isnan(r)) {
        ASSERT_TRUE(std::isnan(dec[h])) << h;
      } else {
        ASSERT_EQ(dec[h], r) << "f16 " << h;
      }
    }
    simd::bf16_to_f32_n(ma.p, dec.data(), 65536);
    for (uint32_t h = 0; h < 65536; ++h) {
      const float r = simd::bfloat_to_float(static_cast<uint16_t>(h));
      if (std::isnan(r)) {
        ASSERT_TRUE(std::isnan(dec[h])) << h;
      } else {
        ASSERT_EQ(dec[h], r) << "bf16 " << h;
      }
    }
    std::vector<uint16_t> enc(f.size());
    simd::f32_to_f16_n(f.data() + 1, enc.data(), nf);
    for (int64_t i = 0; i < nf; ++i) {
      const float v = f[i + 1];
      if (std::isnan(v)) {
        ASSERT_TRUE(std::isnan(simd::half_to_float(enc[i])));
      } else {
        ASSERT_EQ(enc[i], simd::float_to_half(v)) << v;
      }
    }
    simd::f32_to_bf16_n(f.data() + 1, enc.data(), nf);
    for (int64_t i = 0; i < nf; ++i) ASSERT_EQ(enc[i], simd::float_to_bfloat(f[i + 1])) << f[i + 1];
  });
}

// The dispatch layer is the only place that may include ISA-specific headers: intrinsics
// headers (<immintrin.h>, <arm_neon.h>, <arm_sve.h>, ...) and Highway's headers (whose ops are
// per-target). Anything else that needs SIMD calls simd/simd.h.
TEST(SimdLayer, NoIsaHeadersOutsideSrcSimd) {
  namespace fs = std::filesystem;
  const fs::path src = fs::path(EDGELLM_SOURCE_DIR) / "src";
  const std::regex isa(
      R"(^\s*#\s*include\s*[<"]((\w*intrin\.h)|(arm_neon\.h)|(arm_sve\.h)|(arm_fp16\.h)|(arm_bf16\.h)|(hwy/.*))[>"])");
  int scanned = 0, in_simd = 0;
  for (const auto& e : fs::recursive_directory_iterator(src)) {
    if (!e.is_regular_file()) continue;
    const auto ext = e.path().extension();
    if (ext != ".cpp" && ext != ".h" && ext != ".cc" && ext != ".hpp") continue;
    const bool simd = fs::relative(e.path(), src).begin()->string() == "simd";
    std::ifstream in(e.path());
    std::string line;
    int ln = 0;
    while (std::getline(in, line)) {
      ++ln;
      if (!std::regex_search(line, isa)) continue;
      if (simd)
        ++in_simd;
      else
        ADD_FAILURE() << e.path() << ":" << ln << " includes an ISA-specific header outside "
                      << "src/simd: " << line;
    }
    ++scanned;
  }
  EXPECT_GT(scanned, 50);
  EXPECT_GT(in_simd, 0) << "the regex no longer recognises the dispatch layer's own includes";
}

}  // namespace
}  // namespace edgellm
